// Usage: node parse-mermaid.mjs FILE.mmd
// Parses a Mermaid flowchart with Mermaid's own parser (the npm package, under jsdom: Mermaid sanitizes labels
// with DOMPurify, which needs a DOM) and prints what it understood as JSON: {vertices: [{id, text}],
// edges: [{start, end, text, stroke}], subgraphs: [{id, title, nodes}]}, with entity codes (#34;) decoded and
// <br> turned into "\n", so a test can compare labels with the names it declared. Exit 1 on a parse error.
import fs from 'node:fs';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');

// Mermaid keeps "#34;" as a private placeholder until it renders; undo both forms, then the line breaks.
const decode = (s) => String(s)
  .replace(/\uFB02\u00B0\u00B0(\d+)\u00B6\u00DF/g, (_, n) => String.fromCodePoint(Number(n)))
  .replace(/\uFB02\u00B0(\w+)\u00B6\u00DF/g, (_, name) => ({ quot: '"', amp: '&', lt: '<', gt: '>' }[name] ?? `#${name};`))
  .replace(/<br\s*\/?>/g, '\n');

const text = fs.readFileSync(process.argv[2], 'utf8');
try {
  await mermaid.parse(text);
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
  const db = diagram.db;
  console.log(JSON.stringify({
    type: diagram.type,
    vertices: [...db.getVertices().values()].map((v) => ({ id: v.id, text: decode(v.text) })),
    edges: db.getEdges().map((e) => ({ start: e.start, end: e.end, text: decode(e.text), stroke: e.stroke })),
    subgraphs: db.getSubGraphs().map((s) => ({ id: s.id, title: decode(s.title), nodes: s.nodes })),
  }));
} catch (e) {
  console.error(`parse-mermaid: ${e.message}`);
  process.exit(1);
}
