"""Twisted: reactor.listenTCP serves an echo protocol, reactor.connectTCP talks to it."""
import sys

from twisted.internet import protocol, reactor


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data.upper())


class Client(protocol.Protocol):
    def connectionMade(self):
        self.transport.write(b"twisted over vsock")

    def dataReceived(self, data):
        print(data.decode(), self.transport.getPeer().port == port)
        reactor.stop()


class ClientFactory(protocol.ClientFactory):
    protocol = Client

    def clientConnectionFailed(self, connector, reason):
        print("failed:", reason.getErrorMessage())
        reactor.stop()


port = int(sys.argv[1])
factory = protocol.ServerFactory()
factory.protocol = Echo
listening = reactor.listenTCP(port, factory, interface="127.0.0.1")
reactor.connectTCP("localhost", port, ClientFactory(), timeout=30)
reactor.callLater(120, reactor.stop)
reactor.run()
