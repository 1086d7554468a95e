// tests/peers/openwhisk.js - a peer that follows the public Apache OpenWhisk
// REST API documentation (docs/rest_api.md of the project, "Actions" and
// "Activations"), for the openwhisk backend's tests. No OpenWhisk controller
// runs here; this peer answers what the documented API answers:
//
//   node openwhisk.js PORT API_KEY [BLOCKING_LIMIT_MS]
//
//   POST /api/v1/namespaces/NS/actions/NAME?blocking=B&result=R
//        Basic auth with API_KEY ("UUID:KEY"), else 401.
//        Unknown action: 404 {"error": "The requested resource does not exist."}
//        blocking=true&result=true: 200 with the result; an application
//        error: 502 with the result ({"error": ...}); an action running
//        longer than BLOCKING_LIMIT_MS (default 60000): 202 {"activationId"}.
//        blocking=false: 202 {"activationId": ID} at once.
//   GET  /api/v1/namespaces/NS/activations/ID
//        404 until the activation has ended, then 200 with the activation
//        record {"activationId", "name", "namespace", "response": {"status",
//        "statusCode", "success", "result"}, ...}.
//   GET  /stats (not OpenWhisk's): every request seen {method, path, auth}.
//
// Actions: add7 ({value} -> {value: value + 7}), boom (application error),
// slow ({value, ms} -> {value} after ms).
const http = require("http");
const crypto = require("crypto");

const [port, apiKey, limitArg] = process.argv.slice(2);
const blockingLimit = Number(limitArg || 60000);
const expectedAuth = "Basic " + Buffer.from(apiKey).toString("base64");
const seen = [];
const activations = new Map(); // id -> record, once ended

const actions = {
  add7: async (p) => ({ value: p.value + 7 }),
  boom: async (p) => ({ error: "cannot take " + JSON.stringify(p.value) }),
  slow: (p) => new Promise((r) => setTimeout(() => r({ value: p.value }), p.ms || 300)),
};

function send(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function record(id, ns, name, result, start) {
  const failed = result && result.error !== undefined;
  return {
    activationId: id, namespace: ns, name, version: "0.0.1", publish: false,
    start, end: Date.now(), duration: Date.now() - start,
    subject: apiKey.split(":")[0],
    response: { status: failed ? "application error" : "success", statusCode: failed ? 2 : 0,
                success: !failed, result },
    logs: [], annotations: [],
  };
}

function handle(req, res, body) {
  const url = new URL(req.url, "http://peer");
  if (url.pathname === "/stats") return send(res, 200, seen);
  seen.push({ method: req.method, path: url.pathname, query: url.search,
              auth: req.headers.authorization === expectedAuth });
  if (req.headers.authorization !== expectedAuth)
    return send(res, 401, { error: "The supplied authentication is invalid", code: 1 });
  let m = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/actions\/([^/]+)$/);
  if (m && req.method === "POST") {
    const [ns, name] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
    const action = actions[name];
    if (!action) return send(res, 404, { error: "The requested resource does not exist.", code: 2 });
    let params;
    try { params = body.length ? JSON.parse(body) : {}; } catch (e) {
      return send(res, 400, { error: "The request content was malformed." });
    }
    const id = crypto.randomBytes(16).toString("hex");
    const start = Date.now();
    const blocking = url.searchParams.get("blocking") === "true";
    const resultOnly = url.searchParams.get("result") === "true";
    const run = Promise.resolve(action(params)).then((result) => {
      const rec = record(id, ns, name, result, start);
      activations.set(id, rec);
      return rec;
    });
    if (!blocking) return send(res, 202, { activationId: id });
    let answered = false;
    const timer = setTimeout(() => { answered = true; send(res, 202, { activationId: id }); }, blockingLimit);
    run.then((rec) => {
      if (answered) return;
      clearTimeout(timer);
      const ok = rec.response.success;
      if (resultOnly) return send(res, ok ? 200 : 502, rec.response.result);
      return send(res, ok ? 200 : 502, rec);
    });
    return;
  }
  m = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/activations\/([^/]+)$/);
  if (m && req.method === "GET") {
    const rec = activations.get(m[2]);
    if (!rec) return send(res, 404, { error: "The requested resource does not exist.", code: 3 });
    return send(res, 200, rec);
  }
  return send(res, 404, { error: "The requested resource does not exist." });
}

http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => handle(req, res, Buffer.concat(chunks).toString("utf8")));
}).listen(Number(port), "127.0.0.1", () => console.log("listening " + port));
