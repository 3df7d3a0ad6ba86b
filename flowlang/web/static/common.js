// What every page shares: its data from the server, the API with the session cookie, notices.
"use strict";

const flowlang = (() => {
  const REQUEST_HEADER = "X-Flowlang-Request";

  function pageData() {
    const node = document.getElementById("page-data");
    return node ? JSON.parse(node.textContent) : {};
  }

  class ApiError extends Error {
    constructor(status, detail) {
      const reason = detail && typeof detail === "object" && detail.reason
        ? detail.reason : `the service answered ${status}`;
      super(reason);
      this.status = status;
      this.code = detail && detail.code ? detail.code : String(status);
      this.detail = detail || {};
    }
  }

  // A call of the service's API: JSON in and out; an error answer throws ApiError with the
  // service's reason; a signed-out session goes back to the sign-in page.
  async function api(method, path, body) {
    const init = {
      method,
      credentials: "same-origin",
      headers: {[REQUEST_HEADER]: "1", Accept: "application/json"},
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const isJson = (response.headers.get("content-type") || "").includes("json");
    const data = isJson ? await response.json() : null;
    if (response.status === 401) {
      window.location.assign("/signin");
    }
    if (!response.ok) {
      throw new ApiError(response.status, data && data.detail);
    }
    return data;
  }

  // Show a short message at the top of the page (kind: info | error).
  function notice(text, kind = "info") {
    const node = document.getElementById("notice");
    if (!node) return;
    node.textContent = text;
    node.className = `notice ${kind}`;
    node.hidden = !text;
  }

  // A DOM element: el("button", {class: "x", onclick: f}, "text", child, ...).
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (key === "dataset") {
        Object.assign(node.dataset, value);
      } else {
        node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  return {pageData, api, ApiError, notice, el};
})();
