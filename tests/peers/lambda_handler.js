// Lambda handlers for the serverless-offline peer.
//   add7  n -> n + 7
//   boom  throws (the invoke answers 200 with X-Amz-Function-Error)
//   track n -> n + 7 after 20 ms, appending "B <ns> <n>" and "E <ns> <n>"
//         (monotonic clock, shared by the worker threads) to $CB_PEER_LOG, so
//         a test can measure how many ran at once and which inputs ran.
const fs = require("fs");

exports.add7 = async (event) => event + 7;

exports.boom = async (event) => {
  throw new Error("cannot take " + JSON.stringify(event));
};

exports.track = async (event) => {
  const log = process.env.CB_PEER_LOG;
  if (log) fs.appendFileSync(log, `B ${process.hrtime.bigint()} ${event}\n`);
  await new Promise((r) => setTimeout(r, 20));
  if (log) fs.appendFileSync(log, `E ${process.hrtime.bigint()} ${event}\n`);
  return event + 7;
};
