// Progressive enhancement only: every form here also works without JavaScript.
// One function scope: a refused upload's answer is written into this document and runs this file again.
(() => {
  "use strict";

  const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  // Forms that destroy something ask first.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  // Uploads: send with XMLHttpRequest to show a progress bar for the bytes, then poll the server for
  // the import's own progress; the server's answer replaces the page.
  const newUploadId = () =>
    window.crypto?.randomUUID?.() ||
    Array.from({ length: 4 }, () => Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, "0")).join("-");

  for (const form of document.querySelectorAll("form[data-upload]")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const bar = form.querySelector(".progress");
      const fill = bar.querySelector("div");
      const text = form.querySelector("[data-progress-text]");
      const button = form.querySelector('button[type="submit"]');
      const uploadId = newUploadId();
      form.querySelector('[name="upload_id"]').value = uploadId;
      bar.hidden = false;
      text.hidden = false;
      button.disabled = true;
      let polling = null;
      const poll = async () => {
        const response = await fetch(`/admin/upload/progress?id=${uploadId}`, { credentials: "same-origin" });
        if (!response.ok) return; // finished, or another server process holds it: keep the busy bar
        const { done, total } = await response.json();
        if (!total) return;
        bar.classList.remove("busy");
        const percent = Math.round((100 * done) / total);
        fill.style.width = percent + "%";
        text.textContent = `Importing: ${percent}%. Every line is checked; nothing is kept unless all are good.`;
      };
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.upload.addEventListener("progress", (progress) => {
        if (!progress.lengthComputable) return;
        const percent = Math.round((100 * progress.loaded) / progress.total);
        fill.style.width = percent + "%";
        text.textContent = `Uploading: ${percent}% of ${(progress.total / 1048576).toFixed(1)} MB`;
      });
      request.upload.addEventListener("load", () => {
        bar.classList.add("busy");
        text.textContent = "Uploaded. Checking and importing every line…";
        polling = setInterval(poll, 400);
      });
      request.addEventListener("loadend", () => clearInterval(polling));
      request.addEventListener("load", () => {
        if (request.status < 400 && request.responseURL) {
          window.location.assign(request.responseURL);
          return;
        }
        document.open();
        document.write(request.responseText);
        document.close();
      });
      request.addEventListener("error", () => {
        bar.hidden = true;
        button.disabled = false;
        text.textContent = "The upload failed: the connection was lost. Nothing was imported; try again.";
      });
      request.send(new FormData(form));
    });
  }

  // Message editor: render the templates with the sample data as they are typed.
  for (const form of document.querySelectorAll("form[data-preview]")) {
    const fields = [...form.querySelectorAll("[data-template]")];
    const sample = form.querySelector("[data-sample]");
    const errorBox = document.querySelector("[data-preview-error]");
    let timer = null;
    let sequence = 0;
    const refresh = async () => {
      const mine = ++sequence;
      const templates = Object.fromEntries(fields.map((field) => [field.name, field.value]));
      const response = await fetch("/admin/messages/preview", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify({ templates, sample: sample.value }),
        credentials: "same-origin",
      });
      if (mine !== sequence) return; // a newer preview is on its way
      const result = await response.json();
      const problems = result.error ? [result.error] : Object.entries(result.problems || {}).map(([f, p]) => `${f}: ${p}`);
      errorBox.hidden = problems.length === 0;
      errorBox.textContent = problems.join("\n");
      for (const [name, value] of Object.entries(result.rendered || {})) {
        const target = document.querySelector(`[data-preview-field="${name}"]`);
        if (!target) continue;
        if (target.tagName === "IFRAME") target.srcdoc = value; // sandboxed: no scripts, no same-origin
        else target.textContent = value;
      }
    };
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    };
    for (const field of [...fields, sample]) field.addEventListener("input", later);
    refresh();
  }

  // Workflow editor: show the fields of each step's type; add steps without a round trip.
  const stepsBox = document.getElementById("steps");
  if (stepsBox) {
    const showFields = (step) => {
      const type = step.querySelector("[data-step-type]").value;
      for (const label of step.querySelectorAll("[data-for]")) label.hidden = label.dataset.for !== type;
    };
    const renumber = () => {
      [...stepsBox.querySelectorAll("[data-step]")].forEach((step, index) => {
        for (const input of step.querySelectorAll("[name]")) input.name = input.name.replace(/^steps-\d+-/, `steps-${index}-`);
        step.querySelector("label").firstChild.textContent = `Step ${index + 1} `;
      });
    };
    const steps = () => [...stepsBox.querySelectorAll("[data-step]")];
    const blank = steps().at(-1).cloneNode(true);
    // The server renders one blank row for adding a step; with this button it is not needed.
    if (steps().length > 1 && !steps().at(-1).querySelector("[data-step-type]").value) steps().at(-1).remove();
    stepsBox.addEventListener("change", (event) => {
      if (event.target.matches("[data-step-type]")) showFields(event.target.closest("[data-step]"));
    });
    steps().forEach(showFields);
    const add = document.querySelector("[data-add-step]");
    add.hidden = false;
    add.addEventListener("click", () => {
      const step = blank.cloneNode(true);
      for (const input of step.querySelectorAll("input")) input.value = "";
      for (const select of step.querySelectorAll("select")) select.selectedIndex = 0;
      stepsBox.append(step);
      renumber();
      showFields(step);
      step.querySelector("select").focus();
    });
  }
})();
