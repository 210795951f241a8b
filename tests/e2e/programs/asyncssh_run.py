"""asyncssh against OpenSSH's sshd: log in with a key, run a command, read its output."""
import asyncio
import sys

import asyncssh


async def main(port: int, key: str) -> None:
    async with asyncssh.connect("localhost", port=port, username="root", client_keys=[key], known_hosts=None,
                                login_timeout=120) as conn:
        result = await conn.run("echo ssh over vsock", check=True)
        print(result.stdout.strip())


asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
