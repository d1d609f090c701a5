// The review page of `fakeprobe serve`: no libraries, no network beyond this server.
"use strict";
(() => {
  const app = document.getElementById("app");
  const needsToken = app.dataset.auth === "1";
  const maxUpload = Number(app.dataset.maxUpload);
  const tbody = document.querySelector("#jobs tbody");
  const notice = document.getElementById("notice");
  const jobs = new Map(); // id (or a temporary upload key) -> job as the API gave it
  const FINAL = new Set(["done", "error"]);
  const COLOURS = {FAKE: "var(--fake)", REAL: "var(--real)", NO_FACE: "var(--no-face)", ERROR: "var(--error)"};

  const token = () => sessionStorage.getItem("fakeprobe-token") || "";
  const authHeaders = () => (needsToken && token() ? {Authorization: "Bearer " + token()} : {});
  const say = (text) => { notice.textContent = text || ""; };

  function askToken(message) {
    document.getElementById("token-form").hidden = false;
    document.getElementById("token-state").textContent = message;
    document.getElementById("token").focus();
  }

  async function api(path, options = {}) {
    const res = await fetch(path, {...options, headers: {...authHeaders(), ...(options.headers || {})}});
    if (res.status === 401) {
      askToken(token() ? "That token was refused." : "This server needs an API token.");
      throw new Error("unauthorized");
    }
    return res;
  }

  async function errorText(res) {
    try { const body = await res.json(); return body.error.message; } catch (e) { return res.status + " " + res.statusText; }
  }

  // -- the table ---------------------------------------------------------------------------------
  function cell(text, cls, label) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (label) td.dataset.label = label;
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function render(key) {
    const job = jobs.get(key);
    let tr = tbody.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.key = key;
      tbody.prepend(tr);
    }
    const r = job.result;
    tr.className = r ? "r-" + r.verdict : "";
    tr.dataset.status = job.status;
    tr.replaceChildren();
    const file = cell(job.name, "file");
    if (r && r.error) {
      const why = document.createElement("div");
      why.className = "small muted";
      why.textContent = r.error.kind + ": " + r.error.message;
      file.append(why);
    }
    tr.append(file);
    const state = cell(job.status, "state " + job.status, "status");
    if (job.progress !== undefined && job.status === "uploading") state.textContent = `uploading ${job.progress}%`;
    tr.append(state);
    const verdict = cell(undefined, "verdict-cell");
    if (r) {
      const pill = document.createElement("span");
      pill.className = "pill";
      pill.style.borderColor = COLOURS[r.verdict] || "#000";
      pill.textContent = r.verdict;
      verdict.append(pill);
    }
    tr.append(verdict);
    tr.append(cell(r && r.probability !== null && r.probability !== undefined ? r.probability.toFixed(3) : "–", "num prob", "p(fake)"));
    const people = cell(undefined, "people", "people");
    if (r) {
      people.textContent = r.n_persons + (r.persons.length ? ": " : "");
      r.persons.forEach((p, i) => {
        const s = document.createElement("span");
        s.textContent = `#${p.track} ${p.probability.toFixed(2)}${p.decides ? "*" : ""}` + (i < r.persons.length - 1 ? ", " : "");
        people.append(s);
      });
    } else people.textContent = "–";
    tr.append(people);
    const actions = cell(undefined, "actions");
    if (FINAL.has(job.status) && job.id) {
      const open = document.createElement("button");
      open.type = "button";
      open.className = "link report";
      open.textContent = "report";
      open.addEventListener("click", () => openReport(job));
      actions.append(open, " ");
    }
    if (job.id) {
      const del = document.createElement("button");
      del.type = "button";
      del.className = "link delete";
      del.textContent = "delete";
      del.addEventListener("click", () => remove(job));
      actions.append(del);
    }
    tr.append(actions);
    document.getElementById("jobs").hidden = jobs.size === 0;
    document.getElementById("empty").hidden = jobs.size !== 0;
  }

  function upsert(job, oldKey) {
    if (oldKey && oldKey !== job.id) {
      jobs.delete(oldKey);
      const tr = tbody.querySelector(`tr[data-key="${CSS.escape(oldKey)}"]`);
      if (tr) {
        const dup = tbody.querySelector(`tr[data-key="${CSS.escape(job.id)}"]`);
        if (dup) tr.remove(); else tr.dataset.key = job.id;  // the same content again: one row
      }
    }
    jobs.set(job.id, job);
    render(job.id);
  }

  // -- actions -------------------------------------------------------------------------------------
  function upload(file) {
    const key = "upload-" + Math.random().toString(36).slice(2);
    if (file.size > maxUpload) {
      say(`${file.name}: larger than this server's limit of ${(maxUpload / 2 ** 20).toFixed(0)} MiB`);
      return;
    }
    jobs.set(key, {name: file.name, status: "uploading", progress: 0});
    render(key);
    const form = new FormData();
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();  // XHR, not fetch: upload progress
    xhr.open("POST", "/v1/scans");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) { jobs.get(key).progress = Math.floor(100 * e.loaded / e.total); render(key); }
    };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 200 || xhr.status === 202) { upsert(body, key); return; }
      if (xhr.status === 401) askToken(token() ? "That token was refused." : "This server needs an API token.");
      const message = body && body.error ? body.error.message : `${xhr.status} ${xhr.statusText}`;
      jobs.set(key, {name: file.name, status: "failed"});
      render(key);
      say(`${file.name}: ${message}`);
    };
    xhr.onerror = () => { jobs.set(key, {name: file.name, status: "failed"}); render(key); say(`${file.name}: the upload failed (network error)`); };
    xhr.send(form);
  }

  async function openReport(job) {
    // the report needs the token, so it is fetched here and shown from a blob: URL; the tab is
    // opened now, while the click still counts as the user's, so that no popup blocker stops it
    const tab = window.open("", "_blank");
    try {
      const res = await api(`/v1/scans/${job.id}/report`);
      if (!res.ok) throw new Error(await errorText(res));
      const url = URL.createObjectURL(new Blob([await res.blob()], {type: "text/html"}));
      if (tab) tab.location.href = url; else window.location.href = url;
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      if (tab) tab.close();
      if (e.message !== "unauthorized") say(`${job.name}: report not available (${e.message})`);
    }
  }

  async function remove(job) {
    if (!confirm(`Delete ${job.name}, its upload and its report from the server?`)) return;
    const res = await api(`/v1/scans/${job.id}`, {method: "DELETE"});
    if (res.status === 204 || res.status === 404) {
      jobs.delete(job.id);
      const tr = tbody.querySelector(`tr[data-key="${CSS.escape(job.id)}"]`);
      if (tr) tr.remove();
      document.getElementById("jobs").hidden = jobs.size === 0;
      document.getElementById("empty").hidden = jobs.size !== 0;
    } else say(`${job.name}: ${await errorText(res)}`);
  }

  async function loadRecent() {
    const res = await api("/v1/scans?limit=50");
    if (!res.ok) { say(await errorText(res)); return; }
    const page = await res.json();
    for (const job of page.items.reverse()) { jobs.set(job.id, job); render(job.id); }
    document.getElementById("token-form").hidden = !needsToken || !!token();
    document.getElementById("token-state").textContent = "";
  }

  async function poll() {
    const open = [...jobs.values()].filter((j) => j.id && !FINAL.has(j.status));
    for (const job of open) {
      try {
        const res = await api(`/v1/scans/${job.id}`);
        if (res.ok) upsert(await res.json());
        else if (res.status === 404) { jobs.delete(job.id); tbody.querySelector(`tr[data-key="${CSS.escape(job.id)}"]`)?.remove(); }
      } catch (e) { return; }
    }
  }

  // -- wiring --------------------------------------------------------------------------------------
  document.getElementById("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("fakeprobe-token", document.getElementById("token").value.trim());
    document.getElementById("token").value = "";
    loadRecent().catch(() => {});
  });
  const picker = document.getElementById("file");
  picker.addEventListener("change", () => { [...picker.files].forEach(upload); picker.value = ""; });
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); [...e.dataTransfer.files].forEach(upload); });

  if (needsToken && !token()) askToken("This server needs an API token.");
  else loadRecent().catch(() => {});
  setInterval(() => poll().catch(() => {}), 1000);
})();
