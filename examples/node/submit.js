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
"use strict";
const fs = require("fs");
const { connect, JSONCodec } = require("nats");

async function main() {
  const [file, url = process.env.CB_BROKER_URL || "nats://127.0.0.1:4222"] = process.argv.slice(2);
  if (!file) {
    console.error("usage: node submit.js JOB.json [NATS_URL]");
    process.exit(2);
  }
  const job = JSON.parse(fs.readFileSync(file, "utf8"));
  const jc = JSONCodec();
  const nc = await connect({ servers: url });
  try {
    const msg = await nc.request(`cb.submit.${job.tenant}`, jc.encode(job), { timeout: 30000 });
    const reply = jc.decode(msg.data);
    if (!reply.accepted) {
      for (const e of reply.errors) console.error(`rejected: ${e}`);
      process.exitCode = 1;
      return;
    }
    console.error(`accepted: ${job.tenant}/${reply.job_id}`);
    // Listen on the done subject first, then look up the kept message (the
    // job may have ended already): whichever comes first is the answer.
    const subject = `cb.done.${job.tenant}.${reply.job_id}`;
    const sub = nc.subscribe(subject, { max: 1, timeout: 120000 });
    const jsm = await nc.jetstreamManager();
    let done = null;
    try {
      done = await jsm.streams.getMessage("CB_DONE", { last_by_subj: subject });
    } catch (err) {
      // 404: not finished yet; wait for it below
    }
    if (!done) {
      for await (const m of sub) {
        done = m;
        break;
      }
    }
    sub.unsubscribe();
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
