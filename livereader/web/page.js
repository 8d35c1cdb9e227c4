// The live view and the list of reads. Every text from the service goes into the page as text (textContent),
// never as markup: a code can hold "<script>".
"use strict";
const token = new URLSearchParams(location.search).get("token");
const query = token ? "?token=" + encodeURIComponent(token) : "";
const state = document.getElementById("state");
const rows = new Map();  // source and text -> the row's cells

fetch("healthz" + query).then((answer) => {
  if (answer.status === 401) throw new Error("a token is needed: open this page as /?token=TOKEN");
  return answer.json();
}).then((health) => {
  if (health.live) {
    document.getElementById("view").src = "video.mjpg" + query;
  } else {
    document.getElementById("view").hidden = true;
  }
  state.textContent = "livereader " + health.version + (health.live ? ": live" : ": reading service (POST /read)");
}).catch((error) => {
  state.textContent = error.message.startsWith("a token") ? error.message : "the service does not answer";
});

function cell(row, className) {
  const td = row.insertCell();
  if (className) td.className = className;
  return td;
}

const events = new EventSource("events" + query);
events.onmessage = (message) => {
  const code = JSON.parse(message.data);
  const key = code.source + "\u0000" + code.text;
  let entry = rows.get(key);
  if (!entry) {
    const row = document.querySelector("#reads tbody").insertRow(0);
    entry = {text: cell(row, "text"), confidence: cell(row), first: cell(row), last: cell(row), times: cell(row),
             source: cell(row)};
    entry.text.textContent = code.text;
    entry.source.textContent = code.source;
    rows.set(key, entry);
  }
  // first and last seen by the server's clock; times seen: the times the service read it
  entry.first.textContent = new Date(1000 * code.first_seen).toLocaleTimeString();
  entry.last.textContent = new Date(1000 * code.last_seen).toLocaleTimeString();
  entry.times.textContent = String(code.times_seen);
  entry.confidence.textContent = (100 * code.confidence).toFixed(0) + "%";
};
events.onerror = () => { state.textContent = "reconnecting…"; };
events.onopen = () => { if (state.textContent === "reconnecting…") state.textContent = "live"; };
