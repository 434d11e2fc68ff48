// The reference web client's own server: Better Auth (email + password, JWT plugin with its
// defaults: EdDSA keys at /api/auth/jwks, tokens at /api/auth/token) on a SQLite file through
// better-sqlite3, plus the page itself. The Todo API runs elsewhere, on another origin, and
// verifies the tokens against this server's JWKS; this is how a Next.js app with Better Auth
// sits in front of the API.
//
//   PORT=3000 TODO_API_URL=http://127.0.0.1:8000 BETTER_AUTH_SECRET=... node server.mjs
//
// Environment: PORT (default 3000), HOST (127.0.0.1), BETTER_AUTH_URL (default
// http://HOST:PORT: the issuer and audience of the tokens), BETTER_AUTH_SECRET (32+ chars),
// AUTH_DB (SQLite file, default ./auth.db), TODO_API_URL (the API's base URL, given to the page),
// JWT_EXPIRATION (the JWT plugin's expirationTime, default its own 15m; tests shorten it),
// TOKEN_MARGIN_SECONDS (how long before `exp` the page fetches a new token, default 30).
// It prints one line, `listening on URL`, once it accepts connections.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";

import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins/jwt";

const here = fileURLToPath(new URL(".", import.meta.url));
const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT || 3000);
const baseURL = process.env.BETTER_AUTH_URL || `http://${host}:${port}`;
const secret = process.env.BETTER_AUTH_SECRET;
if (!secret || secret.length < 32) {
  console.error("BETTER_AUTH_SECRET must be set (at least 32 characters)");
  process.exit(2);
}

const auth = betterAuth({
  baseURL,
  secret,
  database: new Database(process.env.AUTH_DB || join(here, "auth.db")),
  emailAndPassword: { enabled: true, autoSignIn: true },
  telemetry: { enabled: false },
  plugins: [jwt(process.env.JWT_EXPIRATION ? { jwt: { expirationTime: process.env.JWT_EXPIRATION } } : {})],
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const authHandler = toNodeHandler(auth);
const config = JSON.stringify({
  apiUrl: process.env.TODO_API_URL || "http://127.0.0.1:8000",
  tokenMarginSeconds: Number(process.env.TOKEN_MARGIN_SECONDS ?? 30),
});
const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css" };
const files = { "/": "index.html", "/index.html": "index.html", "/app.js": "dist/app.js", "/style.css": "style.css" };

const server = createServer(async (req, res) => {
  const path = new URL(req.url, baseURL).pathname;
  if (path.startsWith("/api/auth/")) return authHandler(req, res);
  if (path === "/config.json") {
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-store" });
    return res.end(config);
  }
  const file = files[path];
  if (req.method !== "GET" || !file) {
    res.writeHead(404, { "Content-Type": "text/plain" });
    return res.end("not found");
  }
  try {
    const body = await readFile(join(here, file));
    res.writeHead(200, { "Content-Type": types[extname(file)], "Cache-Control": "no-store" });
    res.end(body);
  } catch {
    res.writeHead(500, { "Content-Type": "text/plain" });
    res.end(`${file} is missing: build the page first (python -m tools.e2e --build-only)`);
  }
});
server.listen(port, host, () => console.log(`listening on http://${host}:${port}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
