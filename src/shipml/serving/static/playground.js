// The shipml playground: a form built from the model's input schema, the answer drawn
// as a score bar or class probabilities. No framework, no inline code (strict CSP).
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "shipml-api-key";
let info = null;

function headers(extra) {
  const key = sessionStorage.getItem(KEY);
  return Object.assign(key ? { Authorization: "Bearer " + key } : {}, extra || {});
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) node.append(child);
  return node;
}

const SIMPLE = ["string", "number", "integer", "boolean"];

// One input per field for flat records; a schema with arrays or objects (a score.py's
// inference_schema decorators) gets the JSON editor, filled with the decorators' example.
// A field's JSON type may be a list with "null" (the model takes a missing value there);
// "enum" lists a category's values, "format": "date-time" marks an ISO-8601 date-time.
function fieldsOf(schema) {
  if (!schema || !schema.properties) return [];
  const order = schema.required && schema.required.length ? schema.required : Object.keys(schema.properties);
  const fields = order.map((name) => {
    const prop = schema.properties[name] || {};
    const types = Array.isArray(prop.type) ? prop.type : [prop.type || "string"];
    const values = Array.isArray(prop.enum) ? prop.enum.filter((v) => v !== null) : null;
    return {
      name,
      type: types.find((t) => t !== "null") || "string",
      nullable: types.includes("null"),
      values,
      format: prop.format || null,
    };
  });
  return fields.every((field) => SIMPLE.includes(field.type)) ? fields : [];
}

async function loadInfo() {
  let response;
  try {
    response = await fetch("info", { headers: headers() });
  } catch (err) {
    return showCardError("The service did not answer: " + err.message);
  }
  if (response.status === 401) {
    $("key-form").hidden = false;
    $("api-key").focus();
    return showCardError("Enter an API key to use this model.");
  }
  if (response.status === 503) {
    showCardError("The model is still loading…");
    return setTimeout(loadInfo, 1000);
  }
  if (!response.ok) return showCardError("Could not load the model card (" + response.status + ").");
  $("key-form").hidden = true;
  info = await response.json();
  renderCard();
  renderForm();
}

function showCardError(message) {
  $("model-name").textContent = message;
}

function renderCard() {
  document.title = info.name + " · shipml";
  $("model-name").textContent = info.name + " ";
  $("model-name").append(el("span", { className: "badge", textContent: info.ref }));
  const facts = $("model-facts");
  facts.replaceChildren();
  const add = (term, value, title) => {
    facts.append(el("dt", { textContent: term }), el("dd", { textContent: value, title: title || "" }));
  };
  if (info.created) add("created", new Date(info.created).toLocaleString());
  if (info.framework && info.framework.name) {
    add("framework", info.framework.name + (info.framework.version ? " " + info.framework.version : ""));
  }
  add("contract", info.contract);
  if (info.digest) add("digest", info.digest.slice(7, 19), info.digest);
  for (const [name, value] of Object.entries(info.metrics || {})) {
    add(name, typeof value === "number" ? value.toFixed(3) : String(value));
  }
}

function renderForm() {
  const fields = fieldsOf(info.input_schema);
  const box = $("fields");
  box.replaceChildren();
  const example = info.example || {};
  if (fields.length === 0) {
    // No schema: the body goes to the model as written.
    box.append(el("label", { htmlFor: "body", textContent: "Request body (JSON)" }),
      el("textarea", { id: "body", name: "body", rows: 6, value: JSON.stringify(example || {}, null, 2) }));
  } else if (fields.length === 1 && fields[0].type === "string") {
    const name = fields[0].name;
    box.append(el("label", { htmlFor: "f-" + name, textContent: name }),
      el("textarea", { id: "f-" + name, name, rows: 4, value: example[name] || "", autofocus: true }));
    $("hint").textContent = "Ctrl+Enter to predict";
  } else {
    const grid = el("div", { className: "grid" });
    for (const field of fields) {
      const value = example[field.name];
      if (field.values) {
        // A category: its known values (empty means null where the model takes it).
        const select = el("select", { id: "f-" + field.name, name: field.name });
        if (field.nullable) select.append(el("option", { value: "", textContent: "(missing)" }));
        field.values.forEach((v, i) => select.append(el("option", { value: String(i), textContent: String(v) })));
        const at = field.values.indexOf(value);
        select.value = at >= 0 ? String(at) : (field.nullable ? "" : "0");
        grid.append(el("div", { className: "field" },
          el("label", { htmlFor: select.id, textContent: field.name }), select));
        continue;
      }
      const input = el("input", { id: "f-" + field.name, name: field.name });
      if (field.nullable) input.placeholder = "empty: missing";
      if (field.format === "date-time") input.title = "an ISO-8601 date-time, e.g. 2024-05-01T12:00:00";
      if (field.type === "number" || field.type === "integer") {
        input.type = "number";
        input.step = "any";
        input.inputMode = "decimal";
      } else if (field.type === "boolean") {
        input.type = "checkbox";
      } else {
        input.type = "text";
      }
      if (field.type === "boolean") input.checked = Boolean(value);
      else if (value !== undefined && value !== null) input.value = String(value);
      grid.append(el("div", { className: "field" },
        el("label", { htmlFor: input.id, textContent: field.name }), input));
    }
    box.append(grid);
  }
  $("predict-form").hidden = false;
  updateCurl();
}

function readRecord() {
  const fields = fieldsOf(info.input_schema);
  if (fields.length === 0) return JSON.parse($("body").value);
  const record = {};
  for (const field of fields) {
    const input = $("f-" + field.name);
    if (field.values) {
      record[field.name] = input.value === "" ? null : field.values[Number(input.value)];
    } else if (field.type === "boolean") {
      record[field.name] = input.checked;
    } else if (field.nullable && input.value.trim() === "") {
      record[field.name] = null;
    } else if (field.type === "number" || field.type === "integer") {
      if (input.value.trim() === "" || Number.isNaN(Number(input.value))) {
        throw new Error("Enter a number for " + field.name + ".");
      }
      record[field.name] = Number(input.value);
    } else {
      record[field.name] = input.value;
    }
  }
  return record;
}

function updateCurl() {
  let body = "<record>";
  try { body = JSON.stringify(readRecord()); } catch (err) { /* keep the placeholder */ }
  const auth = sessionStorage.getItem(KEY) ? " -H 'Authorization: Bearer $SHIPML_API_KEY'" : "";
  $("curl").textContent = "curl -X POST " + location.origin + "/predict -H 'Content-Type: application/json'" +
    auth + " -d '" + body.replace(/'/g, "'\\''") + "'";
}

function showError(message, requestId) {
  $("result").hidden = false;
  $("answer").replaceChildren();
  $("error").hidden = false;
  $("error").textContent = message;
  if (requestId) $("error").append(el("small", { textContent: " (request id " + requestId + ")" }));
}

function bar(label, value, highlight) {
  const fill = el("span", { className: "fill" + (highlight ? " top" : "") });
  fill.style.width = Math.max(0, Math.min(1, value)) * 100 + "%";  // CSSOM is allowed by the CSP
  return el("div", { className: "bar-row" },
    el("span", { className: "bar-label", textContent: label }),
    el("span", { className: "track" }, fill),
    el("span", { className: "bar-value", textContent: value.toFixed(3) }));
}

function renderAnswer(answer, millis) {
  const box = $("answer");
  box.replaceChildren();
  $("error").hidden = true;
  const first = Array.isArray(answer) ? answer[0] : answer;
  // A score.py answers whatever run() returns: numbers and strings are shown as raw JSON.
  const one = first !== null && typeof first === "object" ? first : null;
  if (one && typeof one.score === "number") {
    const positive = one.score >= 0.5;
    const fill = el("span", { className: "fill " + (positive ? "good" : "bad") });
    fill.style.width = one.score * 100 + "%";
    box.append(
      el("p", { className: "headline" },
        el("span", { id: "label", textContent: one.label || (positive ? "positive" : "negative") }),
        " · score ", el("span", { id: "score", textContent: one.score.toFixed(3) })),
      el("div", { className: "score-track", role: "img", ariaLabel: "score " + one.score.toFixed(3) }, fill));
  } else if (one && one.probabilities) {
    box.append(el("p", { className: "headline" }, el("span", { id: "label", textContent: String(one.label) })));
    const entries = Object.entries(one.probabilities).sort((a, b) => b[1] - a[1]);
    entries.forEach(([name, p], i) => box.append(bar(name, p, i === 0)));
  } else if (one && "prediction" in one) {
    box.append(el("p", { className: "headline" }, el("span", { id: "label", textContent: String(one.prediction) })));
  } else if (one && "label" in one) {
    box.append(el("p", { className: "headline" }, el("span", { id: "label", textContent: String(one.label) })));
  }
  box.append(el("p", { className: "muted", textContent: "answered in " + millis.toFixed(1) + " ms" }));
}

async function predict(event) {
  event.preventDefault();
  let record;
  try {
    record = readRecord();
  } catch (err) {
    return showError(err.message);
  }
  const button = $("predict");
  button.disabled = true;
  button.textContent = "Predicting…";
  const started = performance.now();
  try {
    const response = await fetch("predict", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(record),
    });
    const text = await response.text();
    let answer = null;
    try { answer = JSON.parse(text); } catch (err) { answer = text; }
    $("result").hidden = false;
    $("raw").textContent = typeof answer === "string" ? answer : JSON.stringify(answer, null, 2);
    if (!response.ok) {
      const error = (answer && answer.error) || {};
      showError(error.message || "The service answered " + response.status + ".", error.request_id);
      if (response.status === 401) $("key-form").hidden = false;
    } else {
      renderAnswer(answer, performance.now() - started);
    }
  } catch (err) {
    showError("The service did not answer: " + err.message);
  } finally {
    button.disabled = false;
    button.textContent = "Predict";
    updateCurl();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("predict-form").addEventListener("submit", predict);
  $("predict-form").addEventListener("input", updateCurl);
  $("predict-form").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("predict-form").requestSubmit();
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("api-key").value.trim());
    loadInfo();
  });
  $("curl").textContent = "curl -X POST " + location.origin + "/predict -H 'Content-Type: application/json' -d '<record>'";
  loadInfo();
});
