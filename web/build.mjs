// Bundles src/main.js and @moq/lite into dist/main.js for the page (esbuild, ES module).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));

/** Builds dist/main.js; resolves when written. */
export async function buildBundle() {
  await build({
    absWorkingDir: here,
    entryPoints: ["src/main.js"],
    bundle: true,
    format: "esm",
    target: "chrome120",
    sourcemap: true,
    outfile: "dist/main.js",
    logLevel: "warning",
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildBundle();
  console.log("built dist/main.js");
}
