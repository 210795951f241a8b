"""Apache Thrift's TSocket and TServer: a small RPC service (a hand-written processor, as the Thrift
compiler would generate), a server thread and a client, over TBinaryProtocol."""
import sys
import threading

from thrift.protocol import TBinaryProtocol
from thrift.server import TServer
from thrift.Thrift import TMessageType
from thrift.transport import TSocket, TTransport


class ShoutProcessor:
    def process(self, iprot, oprot):
        name, _, seqid = iprot.readMessageBegin()
        iprot.readStructBegin()
        iprot.readFieldBegin()
        text = iprot.readString()
        iprot.readFieldEnd()
        iprot.readFieldBegin()
        iprot.readStructEnd()
        iprot.readMessageEnd()
        oprot.writeMessageBegin(name, TMessageType.REPLY, seqid)
        oprot.writeString(text.upper())
        oprot.writeMessageEnd()
        oprot.trans.flush()
        return True


def call(transport, text):
    protocol = TBinaryProtocol.TBinaryProtocol(transport)
    protocol.writeMessageBegin("shout", TMessageType.CALL, 1)
    protocol.writeStructBegin("args")
    protocol.writeFieldBegin("text", 11, 1)
    protocol.writeString(text)
    protocol.writeFieldEnd()
    protocol.writeFieldStop()
    protocol.writeStructEnd()
    protocol.writeMessageEnd()
    transport.flush()
    protocol.readMessageBegin()
    reply = protocol.readString()
    protocol.readMessageEnd()
    return reply


port = int(sys.argv[1])
server_socket = TSocket.TServerSocket(host="0.0.0.0", port=port)
server = TServer.TThreadedServer(ShoutProcessor(), server_socket, TTransport.TBufferedTransportFactory(),
                                 TBinaryProtocol.TBinaryProtocolFactory(), daemon=True)
threading.Thread(target=server.serve, daemon=True).start()
client = TTransport.TBufferedTransport(TSocket.TSocket("localhost", port))
for attempt in range(100):
    try:
        client.open()
        break
    except TTransport.TTransportException:
        import time
        time.sleep(0.1)
print(call(client, "thrift over vsock"))
client.close()
