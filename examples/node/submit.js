#!/usr/bin/env node
// Submit a cbcore job over NATS from Node.js and wait for its done message.
//
//   node submit.js JOB.json [nats://127.0.0.1:4222]
//
// The job is one JSON message (schemas/job.json). The engine answers the
// request on cb.submit.<tenant> once the job is durably accepted; the job's
// end is published on cb.done.<tenant>.<job_id>; the stream CB_DONE keeps
// the last message per subject, so a client that comes late still finds it.
// Prints the done message as one JSON line; exits 0 when it succeeded.
//
// With an identity (docs/security.md): a URL that names a user
// (nats://alice@host:port) and the password in $CB_BROKER_PASSWORD or the
// file named by $CB_BROKER_PASSWORD_FILE, as `cb tenant add` prints them.
// Its replies then come under _INBOX.<user>, the only replies it may read,
// and the done message comes from a consumer of CB_DONE filtered to this
// job (which a tenant may create for its own subjects), so that it is found
// whether the job ends before or after we listen.
"use strict";
const fs = require("fs");
const {
  connect, JSONCodec, createInbox, nuid, nanos, AckPolicy, DeliverPolicy,
} = require("nats");

// connect() options for a URL that may name a user (its password from the
// URL or the environment, never the command line)
function connectOptions(url) {
  const u = new URL(url.split(",")[0]);
  const opts = { servers: url.split(",").map((s) => { const x = new URL(s); return `${x.protocol}//${x.host}`; }) };
  if (u.username) {
    opts.user = decodeURIComponent(u.username);
    opts.pass = u.password ? decodeURIComponent(u.password)
      : process.env.CB_BROKER_PASSWORD
        || (process.env.CB_BROKER_PASSWORD_FILE
          && fs.readFileSync(process.env.CB_BROKER_PASSWORD_FILE, "utf8").split("\n")[0]);
    opts.inboxPrefix = `_INBOX.${opts.user}`;
  }
  return opts;
}

async function main() {
  const [file, url = process.env.CB_BROKER_URL || "nats://127.0.0.1:4222"] = process.argv.slice(2);
  if (!file) {
    console.error("usage: node submit.js JOB.json [NATS_URL]");
    process.exit(2);
  }
  const job = JSON.parse(fs.readFileSync(file, "utf8"));
  const jc = JSONCodec();
  const opts = connectOptions(url);
  const nc = await connect(opts);
  try {
    const msg = await nc.request(`cb.submit.${job.tenant}`, jc.encode(job), { timeout: 30000 });
    const reply = jc.decode(msg.data);
    if (!reply.accepted) {
      for (const e of reply.errors) console.error(`rejected: ${e}`);
      process.exitCode = 1;
      return;
    }
    console.error(`accepted: ${job.tenant}/${reply.job_id}`);
    // The last message of the done subject, kept by the stream CB_DONE, and
    // whatever comes after: a consumer made for this wait, which the server
    // drops 10 s after we stop listening.
    const subject = `cb.done.${job.tenant}.${reply.job_id}`;
    const deliver = createInbox(opts.inboxPrefix);
    const sub = nc.subscribe(deliver, { max: 1, timeout: 120000 });
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    await jsm.consumers.add("CB_DONE", {
      name: `kept_${nuid.next()}`,
      filter_subject: subject,
      deliver_subject: deliver,
      deliver_policy: DeliverPolicy.LastPerSubject,
      ack_policy: AckPolicy.None,
      inactive_threshold: nanos(10000),
      mem_storage: true,
      num_replicas: 1,
    });
    let done = null;
    for await (const m of sub) {
      done = m;
      break;
    }
    if (!done) throw new Error("no done message within 120 s");
    const d = jc.decode(done.data);
    console.log(JSON.stringify(d));
    process.exitCode = d.status === "succeeded" ? 0 : 1;
  } finally {
    await nc.close();
  }
}

main().catch((err) => {
  console.error(`error: ${err.message}`);
  process.exit(1);
});
