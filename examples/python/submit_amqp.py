#!/usr/bin/python3
"""Submit a cbcore job over RabbitMQ from Python (Debian's python3-pika) and
wait for its done message.

    /usr/bin/python3 submit_amqp.py JOB.json [amqp://guest:guest@127.0.0.1:5672/]

Everything goes through the topic exchange `cb`, with the subject as routing
key. The submission is a request on cb.submit.<tenant> answered on the direct
reply-to queue; the answer comes once the job is durably accepted. The job's
end is published on cb.done.<tenant>.<job_id> into the stream queue `cb.done`,
which keeps it: read the stream from the submission time and take the first
message routed with this job's subject. Prints the done message as one JSON
line; exits 0 when the job succeeded.
"""
import json
from datetime import datetime, timezone
import os
import sys
import time
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
    conn = pika.BlockingConnection(pika.URLParameters(url))
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

    # 2. the done message, from the stream queue cb.done
    subject = f"cb.done.{tenant}.{job_id}"
    done = {}
    ch2 = conn.channel()
    ch2.basic_qos(prefetch_count=100)  # streams need a prefetch and manual acks

    def on_done(channel, method, props, body):
        channel.basic_ack(method.delivery_tag)
        if method.routing_key == subject and not done:
            done.update(json.loads(body))
            channel.stop_consuming()

    # a datetime is sent as an AMQP timestamp: the stream from that second on
    ch2.basic_consume("cb.done", on_done,
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
