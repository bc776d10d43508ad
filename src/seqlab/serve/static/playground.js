// seqlab playground: asks /info which task the run serves, shows its form, posts to its
// endpoint and draws the answer (generation, label with probabilities, tags, answer with
// each hop's attention, or translations with each output token's attention over the source
// tokens, both as heatmaps). No build step, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;
let apiKey = sessionStorage.getItem("seqlab-api-key") || "";

function headers() {
  const h = { "Content-Type": "application/json" };
  if (apiKey) h["X-API-Key"] = apiKey;
  return h;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function loadInfo() {
  const response = await fetch("info", { headers: headers() });
  if (response.status === 401) {
    $("key-row").hidden = false;
    $("about").textContent = "This service needs an API key.";
    return;
  }
  info = await response.json();
  $("key-row").hidden = !apiKey;
  // the test counterpart of the metric the run chose its weights by (val_acc -> test_acc)
  const chosen = String(info.config.eval?.metric ?? "").replace(/^val_/, "test_");
  const metric =
    Object.entries(info.metrics).find(([k]) => k === chosen) ??
    Object.entries(info.metrics).find(([k]) => k.startsWith("test_"));
  $("about").textContent =
    `${info.task} · ${info.model} · vocabulary ${info.vocab_size ?? "–"}` +
    (metric ? ` · ${metric[0]} ${Number(metric[1]).toFixed(2)}` : "") +
    ` · POST ${info.endpoint}`;
  const example = info.example;
  if (info.kind === "answer") {
    $("story-row").hidden = false;
    $("story").value = example.story.join("\n");
    $("input-label").textContent = "Question";
    $("input").rows = 1;
    $("input").value = example.question;
  } else if (info.kind === "generate") {
    $("generate-row").hidden = false;
    $("input-label").textContent = "Prompt";
    $("input").value = example.prompt;
  } else if (info.kind === "translate") {
    $("translate-row").hidden = false;
    $("input-label").textContent = "Source (one sentence a line)";
    $("input").value = example.source.join("\n");
    $("beam").max = info.limits.max_beam;
    $("max-len").max = info.limits.max_generate_tokens;
    $("beam").value = Math.min(info.config.data?.beam_size ?? 1, info.limits.max_beam);
    $("max-len").value = Math.min(50, info.limits.max_generate_tokens);
  } else {
    $("input-label").textContent = info.kind === "tag" ? "Sentence to tag" : "Sentence";
    $("input").value = example.text;
  }
  $("form").hidden = false;
}

function body() {
  const text = $("input").value;
  if (info.kind === "answer") {
    const story = $("story").value.split("\n").map((s) => s.trim()).filter((s) => s);
    return { story, question: text };
  }
  if (info.kind === "generate") {
    return {
      prompt: text,
      max_tokens: Number($("max-tokens").value),
      temperature: Number($("temperature").value),
      seed: Number($("seed").value),
    };
  }
  if (info.kind === "translate") {
    const source = text.split("\n").map((s) => s.trim()).filter((s) => s);
    return {
      source,
      beam: Number($("beam").value),
      max_len: Number($("max-len").value),
      attention: $("show-attention").checked,
    };
  }
  return { text };
}

function heatmap(rows, columns, weights, id = "heatmap") {
  // weights[r][c] in [0, 1]: a table with one row per hop (output token), one column per
  // memory (source token)
  const table = element("table", "heatmap");
  table.id = id;
  weights.forEach((row, r) => {
    const tr = element("tr");
    tr.appendChild(element("th", "", rows[r]));
    row.forEach((w) => {
      const td = element("td", "", w.toFixed(2));
      td.style.background = `rgba(59, 111, 209, ${Math.min(1, Math.max(0, w))})`;
      td.style.color = w > 0.5 ? "white" : "inherit";
      tr.appendChild(td);
    });
    table.appendChild(tr);
  });
  const head = element("tr");
  head.appendChild(element("th"));
  columns.forEach((c) => head.appendChild(element("th", "", c)));
  table.insertBefore(head, table.firstChild);
  return table;
}

function render(result) {
  const out = $("output");
  out.replaceChildren();
  if (info.kind === "generate") {
    const box = element("div", "generation");
    box.id = "generation";
    box.appendChild(element("span", "prompt", result.prompt));
    box.appendChild(element("span", "continuation", result.text));
    out.appendChild(box);
  } else if (info.kind === "classify") {
    const label = element("div", "label", result.label);
    label.id = "label";
    out.appendChild(label);
    Object.entries(result.probabilities)
      .sort((a, b) => b[1] - a[1])
      .forEach(([name, p]) => {
        const bar = element("div", "bar");
        bar.appendChild(element("span", "", name));
        const fill = element("span", "fill");
        fill.style.width = `${Math.round(p * 20)}rem`;
        bar.appendChild(fill);
        bar.appendChild(element("span", "", p.toFixed(3)));
        out.appendChild(bar);
      });
  } else if (info.kind === "tag") {
    const tags = element("div", "tags");
    tags.id = "tags";
    result.tokens.forEach((token, i) => {
      const box = element("span", "token", token);
      box.appendChild(element("span", "tag", result.tags[i]));
      tags.appendChild(box);
    });
    out.appendChild(tags);
  } else if (info.kind === "answer") {
    const answer = element("div", "label", result.answer);
    answer.id = "answer";
    out.appendChild(answer);
    const rows = result.attention.map((_, i) => `hop ${i + 1}`);
    out.appendChild(heatmap(rows, result.memories, result.attention));
  } else if (info.kind === "translate") {
    result.translations.forEach((t, i) => {
      const box = element("div", "translation");
      box.appendChild(element("div", "source", t.source));
      const text = element("div", "label", t.translation);
      text.id = `translation-${i}`;
      box.appendChild(text);
      if (t.attention) {
        box.appendChild(heatmap(t.target_tokens, t.source_tokens, t.attention, `heatmap-${i}`));
      }
      out.appendChild(box);
    });
  }
}

async function submit(event) {
  event.preventDefault();
  showError("");
  $("run").disabled = true;
  try {
    const response = await fetch(info.endpoint.slice(1), {
      method: "POST",
      headers: headers(),
      body: JSON.stringify(body()),
    });
    const result = await response.json();
    if (!response.ok) {
      const detail = Array.isArray(result.detail)
        ? result.detail.map((d) => d.msg).join("; ")
        : result.detail;
      showError(`${response.status}: ${detail}`);
      return;
    }
    render(result);
  } catch (err) {
    showError(String(err));
  } finally {
    $("run").disabled = false;
  }
}

$("form").addEventListener("submit", submit);
$("key-save").addEventListener("click", () => {
  apiKey = $("api-key").value;
  sessionStorage.setItem("seqlab-api-key", apiKey);
  loadInfo();
});
loadInfo().catch((err) => showError(String(err)));
