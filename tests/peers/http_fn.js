// tests/peers/http_fn.js - HTTP functions for the http backend's tests,
// with the receiving side of CloudEvents checked by the cloudevents SDK.
//
//   node http_fn.js PORT [--tls CERT KEY] [--throttle N] [--retry-after S]
//                   [--concurrency C]
//
//   POST /fn/add7         JSON n -> n + 7 (also /idle/add7)
//   POST /fn/sleep        JSON ms -> ms, answered after ms milliseconds
//   POST /fn/fail         500 "boom: <body>"
//   POST /fn/whoami       200 with the Authorization header it was sent
//   POST /fn/denied       401 "denied for <Authorization header>" (a server
//                         that echoes credentials, as some do in errors)
//   POST /ce/add7         a CloudEvent in binary mode (HTTP.toEvent + validate
//                         of the SDK): its data + 7; anything else 400 with
//                         the SDK's reason
//   POST /throttled/add7  the first N requests 429 (Retry-After: S if given),
//                         then add7
//   POST /busy/NAME       JSON ms (or {"ms"}) -> the same, answered after ms
//                         milliseconds; 429 at once while C requests are
//                         in flight (--concurrency C, default 1): an account
//                         at its concurrency limit
//   GET  /stats           {"arrivals": [{"path", "ns", "status", "port", "auth"}],
//                          "events": [{"id", "source", "type", "subject"}]}
// Prints "listening PORT" when it accepts connections.
const http = require("http");
const https = require("https");
const fs = require("fs");
const { HTTP } = require("cloudevents");

const args = process.argv.slice(2);
const port = Number(args[0]);
let tls = null, throttle = 0, retryAfter = null, concurrency = 1, busy = 0;
for (let i = 1; i < args.length; i++) {
  if (args[i] === "--tls") { tls = { cert: fs.readFileSync(args[++i]), key: fs.readFileSync(args[++i]) }; }
  else if (args[i] === "--throttle") throttle = Number(args[++i]);
  else if (args[i] === "--retry-after") retryAfter = args[++i];
  else if (args[i] === "--concurrency") concurrency = Number(args[++i]);
}

const arrivals = [];
const events = [];
let throttled = 0;

function reply(res, status, body, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(body === undefined ? "" : JSON.stringify(body));
}

function handle(req, res, body) {
  const arrival = { path: req.url, ns: process.hrtime.bigint().toString(), status: 0,
                    port: req.socket.remotePort, auth: req.headers.authorization || null };
  arrivals.push(arrival);
  const send = (status, out, headers) => { arrival.status = status; reply(res, status, out, headers); };
  if (req.method === "GET" && req.url === "/stats") {
    arrivals.pop();
    return reply(res, 200, { arrivals, events });
  }
  let input;
  try { input = body.length ? JSON.parse(body) : null; } catch (e) { return send(400, { error: "not JSON" }); }
  if (req.url.startsWith("/busy/")) {
    if (busy >= concurrency) return send(429, { error: "too many at once" });
    busy++;
    const ms = typeof input === "number" ? input : (input && Number(input.ms)) || 0;
    return setTimeout(() => { busy--; send(200, input); }, ms);
  }
  switch (req.url) {
    case "/fn/add7": case "/idle/add7": return send(200, input + 7);
    case "/fn/sleep": return setTimeout(() => send(200, input), Number(input));
    case "/fn/whoami": return send(200, req.headers.authorization || null);
    case "/fn/denied": arrival.status = 401; res.writeHead(401, { "content-type": "text/plain" }); return res.end("denied for " + (req.headers.authorization || "nobody"));
    case "/fn/fail": arrival.status = 500; res.writeHead(500, { "content-type": "text/plain" }); return res.end("boom: " + body);
    case "/ce/add7": {
      let ev;
      try {
        ev = HTTP.toEvent({ headers: req.headers, body });
        ev.validate();
      } catch (e) {
        return send(400, { error: "not a CloudEvent: " + (e.message || String(e)) });
      }
      if (HTTP.isEvent({ headers: req.headers, body }) !== true) return send(400, { error: "not binary mode" });
      events.push({ id: ev.id, source: ev.source, type: ev.type, subject: ev.subject, specversion: ev.specversion });
      const data = typeof ev.data === "string" ? JSON.parse(ev.data) : ev.data;
      return send(200, data + 7);
    }
    case "/throttled/add7":
      if (throttled < throttle) {
        throttled++;
        return send(429, { error: "slow down" }, retryAfter ? { "retry-after": retryAfter } : {});
      }
      return send(200, input + 7);
    default: return send(404, { error: "no function at " + req.url });
  }
}

const onRequest = (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => handle(req, res, Buffer.concat(chunks).toString("utf8")));
};
const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);
server.keepAliveTimeout = 30000;
server.listen(port, "127.0.0.1", () => console.log("listening " + port));
