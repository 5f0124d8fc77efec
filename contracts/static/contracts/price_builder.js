/*
 * The price builder's live preview (templates/admin/contracts/ratecard/price_builder.html).
 *
 * As the user types, the whole form is posted (debounced) to the admin's preview endpoint,
 * which answers with the formula written from the prices and what the sample call costs,
 * term by term, as decimal strings. All arithmetic happens on the server in Decimal, with
 * the same code that checks the price when it is saved: this file never computes money, so
 * the preview cannot disagree with the stored price.
 */
"use strict";

(function () {
  const form = document.getElementById("price-builder");
  if (!form) {
    return;
  }
  const DELAY_MS = 250;
  const previewUrl = form.dataset.previewUrl;
  const formula = form.elements.namedItem("formula");
  const custom = form.elements.namedItem("custom_formula");
  const status = document.getElementById("tt-preview-status");
  const table = document.getElementById("tt-preview-terms");
  const rated = document.getElementById("tt-preview-rated");
  const errors = document.getElementById("tt-preview-errors");
  const warnings = document.getElementById("tt-preview-warnings");
  const extraSamples = document.getElementById("tt-extra-samples");
  let timer = null;
  let asked = 0;

  function element(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    Object.entries(attributes || {}).forEach(([name, value]) => node.setAttribute(name, value));
    return node;
  }

  // -- the formula: written from the prices unless the user writes it --------------------
  function followCustom() {
    formula.readOnly = !custom.checked;
    formula.classList.toggle("tt-written", !custom.checked);
  }

  // -- other-metric rows ----------------------------------------------------------------
  const addOther = document.getElementById("tt-add-other");
  const template = document.getElementById("tt-other-template");
  const rows = document.getElementById("tt-other-rows");
  const total = form.elements.namedItem("other-TOTAL_FORMS");
  const most = form.elements.namedItem("other-MAX_NUM_FORMS");
  if (addOther && template && total) {
    addOther.hidden = false;
    addOther.addEventListener("click", () => {
      const index = Number(total.value);
      if (most && index >= Number(most.value)) {
        return;
      }
      const html = template.innerHTML
        .replaceAll("__prefix__", String(index))
        .replaceAll("__number__", String(index + 1));
      rows.insertAdjacentHTML("beforeend", html);
      total.value = String(index + 1);
      rows.lastElementChild.querySelector("input").focus();
    });
  }

  // -- the catalog's list price, as a hint beside the model -----------------------------
  const catalogData = document.getElementById("tt-catalog");
  const catalog = catalogData ? JSON.parse(catalogData.textContent) : [];
  const hint = document.getElementById("tt-catalog-hint");
  const model = form.elements.namedItem("model_pattern");
  const RATE_WORDS = {
    input: "input",
    output: "output",
    cached_input: "cached input",
    cache_write: "cache write",
  };

  function showCatalogHint() {
    if (!hint || !model) {
      return;
    }
    const entry = catalog.find((item) => item.match === model.value.trim());
    hint.hidden = !entry;
    if (entry) {
      const parts = Object.entries(RATE_WORDS)
        .filter(([key]) => key in entry.rates)
        .map(([key, words]) => `${words} ${entry.rates[key]}`);
      hint.textContent = `Catalog list price of ${entry.label}, per 1M tokens: ${parts.join(", ")}.`;
    }
  }

  // -- the preview ----------------------------------------------------------------------
  function ensureSampleInputs(samples) {
    samples.forEach((sample) => {
      if (form.elements.namedItem(sample.field)) {
        return;
      }
      const wrapper = element("div", null, { class: "tt-sample" });
      wrapper.append(element("label", sample.label, { for: `id_${sample.field}` }));
      wrapper.append(
        element("input", null, {
          type: "text",
          inputmode: "numeric",
          autocomplete: "off",
          size: "10",
          name: sample.field,
          id: `id_${sample.field}`,
          value: sample.value,
        }),
      );
      extraSamples.append(wrapper);
    });
  }

  function showError(error) {
    const item = element("li");
    const named = error.label && !error.message.startsWith(error.label);
    item.append(document.createTextNode(named ? `${error.label}: ${error.message}` : error.message));
    if (error.column && error.text) {
      // The formula's line with a caret under the column the error names.
      const line = error.text.replace(/\r\n?/g, "\n").split("\n")[error.line - 1] || "";
      const caret = " ".repeat(Math.max(error.column - 1, 0)) + "^";
      item.append(element("pre", `${line}\n${caret}`, { class: "tt-formula-caret" }));
    }
    errors.append(item);
  }

  function render(data) {
    if (data.written_formula !== null && !custom.checked) {
      formula.value = data.written_formula;
    }
    ensureSampleInputs(data.samples || []);
    document.querySelectorAll(".tt-currency").forEach((node) => {
      node.textContent = data.currency || "";
    });
    errors.replaceChildren();
    warnings.replaceChildren();
    (data.errors || []).forEach(showError);
    (data.warnings || []).forEach((text) => warnings.append(element("li", text, { class: "warning" })));
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!data.ok) {
      table.hidden = true;
      rated.hidden = true;
      status.textContent = data.errors && data.errors.length
        ? "The preview waits for the errors below to be corrected."
        : "Enter a price to see what the sample call costs.";
      return;
    }
    data.terms.forEach((term) => {
      const row = element("tr");
      if (term.label === term.text) {
        // A term with no name of its own (a formula that is not a plain sum): its text only.
        const whole = element("th", null, { scope: "row", colspan: "2" });
        whole.append(element("code", term.text));
        row.append(whole);
      } else {
        row.append(element("th", term.label, { scope: "row" }));
        const part = element("td");
        part.append(element("code", term.text));
        row.append(part);
      }
      row.append(element("td", term.amount, { class: "tt-amount-col" }));
      body.append(row);
    });
    document.getElementById("tt-preview-total").textContent = data.total;
    table.hidden = false;
    status.textContent = `The sample call costs ${data.total} ${data.currency}.`;
    rated.hidden = data.rated_total === data.total;
    rated.textContent = `Rated to 12 decimal places: ${data.rated_total}.`;
  }

  async function refresh() {
    const mine = ++asked;
    let data;
    try {
      const response = await fetch(previewUrl, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        throw new Error(`the server answered ${response.status}`);
      }
      data = await response.json();
    } catch (error) {
      if (mine === asked) {
        status.textContent = `The preview is not available (${error.message}).`;
      }
      return;
    }
    if (mine === asked) {
      // Only the answer to the latest question is shown: answers can overtake each other.
      render(data);
    }
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, DELAY_MS);
  }

  form.addEventListener("input", (event) => {
    if (event.target === model) {
      showCatalogHint();
    }
    later();
  });
  form.addEventListener("change", (event) => {
    if (event.target === custom) {
      followCustom();
    }
    later();
  });
  followCustom();
  showCatalogHint();
  refresh();
})();
