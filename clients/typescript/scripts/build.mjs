// Build the package: copy the contract's generated types (generated/ts/api.d.ts, made by
// `python -m tools.regen`) into src/ and dist/, check that the package version is the
// contract's info.version, and compile src/ with tsc. `node scripts/build.mjs --check` only
// type-checks.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const repo = fileURLToPath(new URL("../../..", import.meta.url));
const types = process.env.TODO_API_TYPES || `${repo}generated/ts/api.d.ts`;
const contract = process.env.TODO_API_CONTRACT || `${repo}specs/api/openapi.yaml`;

const pkg = JSON.parse(readFileSync(`${pkgDir}package.json`, "utf8"));
// info.version is the first two-space-indented `version:` line after `info:`.
const info = readFileSync(contract, "utf8").split(/^info:\s*$/m)[1] ?? "";
const version = /^ {2}version:\s*['"]?([^'"\s]+)/m.exec(info)?.[1];
if (pkg.version !== version) {
  console.error(`package.json version ${pkg.version} is not the contract's info.version ${version}`);
  process.exit(1);
}

copyFileSync(types, `${pkgDir}src/api.d.ts`);
const tsc = createRequire(`${pkgDir}package.json`).resolve("typescript/bin/tsc");
const check = process.argv.includes("--check");
try {
  execFileSync(process.execPath, [tsc, "-p", pkgDir, ...(check ? ["--noEmit"] : [])], { stdio: "inherit" });
} catch {
  process.exit(1);
}
if (!check) {
  mkdirSync(`${pkgDir}dist`, { recursive: true });
  // tsc does not copy declaration files; the emitted index.d.ts imports ./api.js.
  copyFileSync(types, `${pkgDir}dist/api.d.ts`);
  console.log(`built ${pkg.name}@${pkg.version} in ${pkgDir}dist`);
}
