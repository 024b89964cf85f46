// An MCP client built on the official TypeScript SDK (@modelcontextprotocol/sdk, installed
// in tests/.node by scripts/setup.sh), driven by tests/e2e/test_mcp.py.
//
//   node client.mjs http <url> <token> <scenario>    Streamable HTTP, bearer token
//   node client.mjs stdio <lakehouse> <scenario> [args...]  spawn `lakehouse mcp-stdio`
//
// Runs the scenario and prints one JSON object on stdout: what the client saw, for the
// Python test to check. Exit status 0 unless the client itself broke.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = process.env.LH_NODE_DIR || path.join(here, "..", "..", ".node");
const require = createRequire(path.join(nodeDir, "node_modules", "_"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

function errorOf(e) {
  return { code: e.code ?? null, message: String(e.message ?? e) };
}

async function attempt(fn) {
  try {
    return { ok: await fn() };
  } catch (e) {
    return { error: errorOf(e) };
  }
}

async function scenario(client, transport, name) {
  const out = {};
  out.server = client.getServerVersion();
  out.capabilities = client.getServerCapabilities();
  out.protocolVersion = transport.protocolVersion ?? null;
  out.sessionId = transport.sessionId ?? null;
  out.ping = await attempt(() => client.ping());
  out.resources = await attempt(() => client.listResources());
  out.templates = await attempt(() => client.listResourceTemplates());
  out.tools = await attempt(() => client.listTools());
  for (const uri of (process.env.LH_READ_URIS || "").split(",").filter(Boolean))
    (out.reads ??= {})[uri] = await attempt(() => client.readResource({ uri }));
  const calls = JSON.parse(process.env.LH_TOOL_CALLS || "[]");
  out.calls = [];
  for (const c of calls) out.calls.push(await attempt(() => client.callTool(c)));
  if (name === "terminate" && transport.terminateSession) {
    await transport.terminateSession();
    out.afterTerminate = await attempt(() => client.ping());
  }
  return out;
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  let transport, name;
  if (mode === "http") {
    const [url, token, scen] = args;
    name = scen;
    transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    });
  } else if (mode === "stdio") {
    const [bin, scen, ...rest] = args;
    name = scen;
    transport = new StdioClientTransport({ command: bin, args: ["mcp-stdio", ...rest],
                                           env: process.env, stderr: "inherit" });
  } else {
    throw new Error("usage: client.mjs http|stdio ...");
  }
  const client = new Client({ name: "lakehouse-e2e", version: "1.0.0" });
  const connected = await attempt(() => client.connect(transport));
  let out;
  if (connected.error) out = { connectError: connected.error };
  else out = await scenario(client, transport, name);
  await client.close().catch(() => {});
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
