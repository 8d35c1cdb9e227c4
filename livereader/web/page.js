// The live view and the list of reads. Every text from the service goes into the page as text (textContent),
// never as markup: a code can hold "<script>".
"use strict";
const token = new URLSearchParams(location.search).get("token");
const query = token ? "?token=" + encodeURIComponent(token) : "";
const state = document.getElementById("state");
const rows = new Map();  // source and text -> the row's cells

fetch("healthz" + query).then((answer) => answer.json()).then((health) => {
  if (health.live) {
    document.getElementById("view").src = "video.mjpg" + query;
  } else {
    document.getElementById("view").hidden = true;
  }
  state.textContent = "livereader " + health.version + (health.live ? ": live" : ": reading service (POST /read)");
}).catch(() => { state.textContent = "the service does not answer"; });

function cell(row, className) {
  const td = row.insertCell();
  if (className) td.className = className;
  return td;
}

const events = new EventSource("events" + query);
events.onmessage = (message) => {
  const code = JSON.parse(message.data);
  const key = code.source + "\u0000" + code.text;
  const now = new Date().toLocaleTimeString();
  let entry = rows.get(key);
  if (!entry) {
    const row = document.querySelector("#reads tbody").insertRow(0);
    entry = {text: cell(row, "text"), confidence: cell(row), first: cell(row), last: cell(row), times: cell(row),
             source: cell(row), count: 0};
    entry.text.textContent = code.text;
    entry.first.textContent = now;
    entry.source.textContent = code.source;
    rows.set(key, entry);
  }
  entry.count += 1;
  entry.confidence.textContent = (100 * code.confidence).toFixed(0) + "%";
  entry.last.textContent = now;
  entry.times.textContent = String(entry.count);
};
events.onerror = () => { state.textContent = "reconnecting…"; };
events.onopen = () => { if (state.textContent === "reconnecting…") state.textContent = "live"; };
