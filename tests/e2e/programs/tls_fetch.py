"""HTTPS clients as applications use them, certificate checks on: requests, urllib3, http.client,
urllib.request, httpx and aiohttp each fetch a page from two HTTPS services, both on port 443 under
their own names, trusting only the CA given. A name the certificate does not carry must fail.

    python tls_fetch.py CA_FILE NAME [NAME...] --wrong NAME
"""
import asyncio
import http.client
import ssl
import sys
import urllib.request

import aiohttp
import httpx
import requests
import urllib3

arguments = sys.argv[1:]
wrong = arguments[arguments.index("--wrong") + 1]
ca_file, names = arguments[0], arguments[1 : arguments.index("--wrong")]
context = ssl.create_default_context(cafile=ca_file)


def with_requests(name):
    response = requests.get(f"https://{name}/page.txt", verify=ca_file, timeout=60)
    return response.status_code, response.text.strip()


def with_urllib3(name):
    pool = urllib3.PoolManager(ca_certs=ca_file, cert_reqs="CERT_REQUIRED")
    response = pool.request("GET", f"https://{name}/page.txt", timeout=60)
    return response.status, response.data.decode().strip()


def with_http_client(name):
    connection = http.client.HTTPSConnection(name, 443, context=context, timeout=60)
    connection.request("GET", "/page.txt")
    response = connection.getresponse()
    return response.status, response.read().decode().strip()


def with_urllib_request(name):
    with urllib.request.urlopen(f"https://{name}/page.txt", context=context, timeout=60) as response:
        return response.status, response.read().decode().strip()


def with_httpx(name):
    response = httpx.get(f"https://{name}/page.txt", verify=context, timeout=60)
    return response.status_code, response.text.strip()


def with_aiohttp(name):
    async def fetch():
        async with aiohttp.ClientSession() as session:
            async with session.get(f"https://{name}/page.txt", ssl=context) as response:
                return response.status, (await response.text()).strip()

    return asyncio.run(fetch())


for client in (with_requests, with_urllib3, with_http_client, with_urllib_request, with_httpx, with_aiohttp):
    label = client.__name__[len("with_"):]
    for name in names:
        status, body = client(name)
        print(label, name, status, body, flush=True)
    try:
        client(wrong)
    except Exception as exc:  # each library wraps the verification error its own way
        verified = "CERTIFICATE_VERIFY_FAILED" in repr(exc) or "certificate verify failed" in str(exc) or \
            "doesn't match" in str(exc) or "Hostname mismatch" in repr(exc)
        print(label, wrong, "refused" if verified else f"failed otherwise: {exc!r}", flush=True)
    else:
        print(label, wrong, "ACCEPTED a certificate for another name", flush=True)
