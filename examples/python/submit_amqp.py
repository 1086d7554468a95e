#!/usr/bin/python3
"""Submit a cbcore job over RabbitMQ from Python (Debian's python3-pika) and
wait for its done message.

    /usr/bin/python3 submit_amqp.py JOB.json [amqp://USER@HOST:PORT/VHOST]

The URL defaults to $CB_BROKER_URL; a password not in it comes from
$CB_BROKER_PASSWORD or the file $CB_BROKER_PASSWORD_FILE names, as for the
cb commands (`cb tenant add NAME` prints both for a tenant).

Everything goes through the topic exchange `cb`, with the subject as routing
key. The submission is a request on cb.submit.<tenant> answered on the direct
reply-to queue; the answer comes once the job is durably accepted. The job's
end is published on cb.done.<tenant>.<job_id> into the tenant's own stream
queue `cb.done.<tenant>` (the only one a tenant's identity may read), which
keeps it: read the stream from the submission time and take the first
message routed with this job's subject. Prints the done message as one JSON
line; exits 0 when the job succeeded.
"""
import json
from datetime import datetime, timezone
import os
import sys
import time
import urllib.parse
import uuid

import pika


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: submit_amqp.py JOB.json [AMQP_URL]")
    url = sys.argv[2] if len(sys.argv) > 2 else os.environ.get(
        "CB_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
    with open(sys.argv[1]) as f:
        job = json.load(f)
    tenant = job["tenant"]
    u = urllib.parse.urlsplit(url)
    password = urllib.parse.unquote(u.password) if u.password else os.environ.get(
        "CB_BROKER_PASSWORD")
    if not password and os.environ.get("CB_BROKER_PASSWORD_FILE"):
        with open(os.environ["CB_BROKER_PASSWORD_FILE"]) as f:
            password = f.readline().strip()
    params = pika.ConnectionParameters(
        u.hostname or "localhost", u.port or 5672, urllib.parse.unquote(u.path[1:]) or "/",
        pika.PlainCredentials(urllib.parse.unquote(u.username or "guest"), password or "guest"))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    since = int(time.time()) - 1  # stream offsets by time have 1 s resolution

    # 1. the request, answered on the direct reply-to pseudo-queue
    reply = {}

    def on_reply(channel, method, props, body):
        reply.update(json.loads(body))
        channel.stop_consuming()

    ch.basic_consume("amq.rabbitmq.reply-to", on_reply, auto_ack=True)
    ch.basic_publish(
        exchange="cb", routing_key=f"cb.submit.{tenant}", body=json.dumps(job),
        properties=pika.BasicProperties(reply_to="amq.rabbitmq.reply-to",
                                        correlation_id=str(uuid.uuid4()),
                                        content_type="application/json"))
    conn.call_later(30, ch.stop_consuming)
    ch.start_consuming()
    if not reply:
        sys.exit("no answer from the engine within 30 s (is cb-engine running?)")
    if not reply.get("accepted"):
        for e in reply.get("errors", []):
            print(f"rejected: {e}", file=sys.stderr)
        sys.exit(1)
    job_id = reply["job_id"]
    print(f"accepted: {tenant}/{job_id}", file=sys.stderr)

    # 2. the done message, from the tenant's stream queue cb.done.<tenant>
    subject = f"cb.done.{tenant}.{job_id}"
    done = {}
    stream = f"cb.done.{tenant}"
    try:  # cb tenant add makes it; the engine at the tenant's first done message
        conn.channel().queue_declare(stream, passive=True)
    except pika.exceptions.ChannelClosedByBroker:  # 404: no done message yet
        conn.channel().queue_declare(stream, durable=True,
                                     arguments={"x-queue-type": "stream"})
        conn.channel().queue_bind(stream, "cb", f"{stream}.#")
    ch2 = conn.channel()
    ch2.basic_qos(prefetch_count=100)  # streams need a prefetch and manual acks

    def on_done(channel, method, props, body):
        channel.basic_ack(method.delivery_tag)
        if method.routing_key == subject and not done:
            done.update(json.loads(body))
            channel.stop_consuming()

    # a datetime is sent as an AMQP timestamp: the stream from that second on
    ch2.basic_consume(stream, on_done,
                      arguments={"x-stream-offset": datetime.fromtimestamp(since, timezone.utc)})
    conn.call_later(120, ch2.stop_consuming)
    ch2.start_consuming()
    conn.close()
    if not done:
        sys.exit("no done message within 120 s")
    print(json.dumps(done))
    sys.exit(0 if done.get("status") == "succeeded" else 1)


if __name__ == "__main__":
    main()
