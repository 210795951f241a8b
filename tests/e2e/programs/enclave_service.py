"""A small web service as it runs in an AWS Nitro Enclave, written as if for any machine: on each
request it fetches two HTTPS services (both on port 443, under their own names) with requests, and
asks AWS STS who it is with botocore, whose credentials come from the instance metadata service.
Served by gunicorn:

    gunicorn --bind 0.0.0.0:8000 enclave_service:app
"""
import os

import botocore.session
import requests
from flask import Flask

ORDERS_URL = os.environ.get("ORDERS_URL", "https://orders.example.com/status.txt")
PRICES_URL = os.environ.get("PRICES_URL", "https://prices.example.net/status.txt")

app = Flask(__name__)


@app.get("/")
def status():
    lines = [requests.get(url, timeout=120).text.strip() for url in (ORDERS_URL, PRICES_URL)]
    session = botocore.session.get_session()
    identity = session.create_client("sts", region_name="us-east-1").get_caller_identity()
    credentials = session.get_credentials()
    lines.append(f"account {identity['Account']} with {credentials.method} key {credentials.access_key}")
    return "\n".join(lines) + "\n", 200, {"Content-Type": "text/plain"}
