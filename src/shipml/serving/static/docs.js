// Renders the service's OpenAPI document offline: every operation, its request body
// fields, examples and responses. No Swagger UI, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) node.append(child);
  return node;
}

function resolve(doc, schema) {
  if (schema && schema.$ref && schema.$ref.startsWith("#/")) {
    return schema.$ref.slice(2).split("/").reduce((node, key) => (node || {})[key], doc) || {};
  }
  return schema || {};
}

function typeOf(doc, schema) {
  const s = resolve(doc, schema);
  if (s.oneOf) return s.oneOf.map((part) => typeOf(doc, part)).join(" | ");
  if (s.enum) return "one of " + s.enum.map(String).join(", ");
  if (s.type === "array") return "array of " + typeOf(doc, s.items);
  if (schema && schema.$ref) return schema.$ref.split("/").pop();
  return s.type || "any";
}

function fieldTable(doc, schema) {
  const s = resolve(doc, schema);
  const record = s.oneOf ? resolve(doc, s.oneOf[0]) : s;
  if (!record.properties) return el("p", { className: "muted", textContent: "Body: " + typeOf(doc, schema) });
  const required = new Set(record.required || []);
  const body = el("tbody");
  for (const [name, spec] of Object.entries(record.properties)) {
    body.append(el("tr", {},
      el("td", {}, el("code", { textContent: name })),
      el("td", { textContent: typeOf(doc, spec) }),
      el("td", { textContent: required.has(name) ? "yes" : "no" }),
      el("td", { textContent: resolve(doc, spec).description || "" })));
  }
  const head = el("tr", {}, ...["field", "type", "required", "description"].map((t) => el("th", { textContent: t })));
  return el("table", {}, el("thead", {}, head), body);
}

function example(value) {
  return el("pre", { textContent: JSON.stringify(value, null, 2) });
}

function operation(doc, path, method, op) {
  const box = el("article", { className: "op" });
  box.append(el("h2", {},
    el("span", { className: "method " + method, textContent: method.toUpperCase() }),
    el("span", { className: "path", textContent: path })));
  if (op.summary) box.append(el("p", { textContent: op.summary }));
  if (op.description) box.append(el("p", { className: "muted", textContent: op.description }));
  const content = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (content) {
    box.append(el("h3", { textContent: "Request body" }), fieldTable(doc, content.schema));
    for (const [name, ex] of Object.entries(content.examples || {})) {
      box.append(el("p", { className: "muted", textContent: ex.summary || name }), example(ex.value));
    }
  }
  const rows = el("tbody");
  for (const [status, response] of Object.entries(op.responses || {})) {
    rows.append(el("tr", {}, el("td", {}, el("code", { textContent: status })),
      el("td", { textContent: response.description || "" })));
    const json = response.content && response.content["application/json"];
    if (json && json.example !== undefined) {
      rows.append(el("tr", {}, el("td"), el("td", {}, example(json.example))));
    }
  }
  box.append(el("h3", { textContent: "Responses" }), el("table", {}, rows));
  return box;
}

async function main() {
  let doc;
  try {
    const response = await fetch("openapi.json");
    if (!response.ok) throw new Error("the service answered " + response.status);
    doc = await response.json();
  } catch (err) {
    $("title").textContent = "Could not load the API description: " + err.message;
    return;
  }
  document.title = "API · " + doc.info.title;
  $("title").textContent = doc.info.title + " ";
  $("title").append(el("span", { className: "badge", textContent: "v" + doc.info.version }));
  $("description").textContent = doc.info.description || "";
  const schemes = (doc.components && doc.components.securitySchemes) || {};
  if (Object.keys(schemes).length) {
    $("auth").hidden = false;
    $("auth").textContent = "Authentication: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'. " +
      "Health probes stay open.";
  }
  const box = $("operations");
  for (const [path, methods] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(methods)) box.append(operation(doc, path, method, op));
  }
}

document.addEventListener("DOMContentLoaded", main);
