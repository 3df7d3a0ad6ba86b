// The agent workspace: offers and interactions live from the stream, the conversation with its
// history, the reply box, canned responses, transfer and completion. Every channel fact (limits,
// window, templates) comes from the service (`/details`, `/measure`); none is written here.
"use strict";

(() => {
  const {api, notice, el} = flowlang;
  const $ = (id) => document.getElementById(id);
  const ICONS = {
    whatsapp: "WA", messenger: "FB", instagram: "IG", line: "LN", sms: "SMS", web: "WEB",
    x_dm: "X", x_public: "X", facebook_page: "FB",
  };
  const PAGE = 20;

  const work = new Map();      // conversation id -> item (from the stream / interactions)
  const details = new Map();   // conversation id -> details
  const unread = new Map();    // conversation id -> count
  const drafts = new Map();    // conversation id -> draft text
  const acwSince = new Map();  // conversation id -> Date after-call work began
  const undelivered = new Map();  // message id -> why the vendor never got it (the stream's)
  let selected = null;
  let before = null;           // the history cursor of the selected conversation
  let shown = 0;               // bumped on each select: a slower, older load is dropped
  let measureTimer = null;

  // ------------------------------------------------------------------ helpers
  const icon = (channel) => el("span", {class: `badge ch-${channel}`, title: channel},
    ICONS[channel] || channel);
  const who = (item) => item.customer_name || item.customer_id || item.conversation_id;
  const clock = (iso) => new Date(iso).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  const day = (iso) => new Date(iso).toLocaleDateString([], {day: "numeric", month: "short"});
  function since(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - new Date(iso)) / 1000));
    const m = Math.floor(seconds / 60), s = seconds % 60;
    return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m}:${String(s).padStart(2, "0")}`;
  }
  function left(iso) {
    const seconds = Math.max(0, Math.round((new Date(iso) - Date.now()) / 1000));
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  }
  const path = (id, action) => `/api/agent/interactions/${encodeURIComponent(id)}/${action}`;

  async function loadDetails(id) {
    const found = await api("GET", path(id, "details"));
    details.set(id, found);
    return found;
  }

  // ------------------------------------------------------------------ offers and tabs
  function renderOffers() {
    const offers = [...work.values()].filter((item) => item.state === "offered");
    $("offers").replaceChildren(...offers.map((item) => {
      const info = details.get(item.conversation_id);
      return el("article", {class: "offer card", dataset: {conversation: item.conversation_id},
                            "data-testid": "offer"},
        el("div", {class: "offer-head"}, icon(item.channel), el("strong", {}, who(item))),
        el("div", {class: "muted"}, `Queue ${item.queue || "—"}`,
          info && info.skills.length ? ` · skills ${info.skills.join(", ")}` : ""),
        el("div", {class: "muted"},
          info && info.waiting_since ? el("span", {class: "tick", dataset: {since: info.waiting_since}},
            `waiting ${since(info.waiting_since)}`) : "",
          item.offer_ends_at ? el("span", {class: "tick countdown", "data-testid": "countdown",
            dataset: {until: item.offer_ends_at}}, ` · ${left(item.offer_ends_at)} to answer`) : ""),
        el("div", {class: "row"},
          el("button", {class: "primary", "data-testid": "accept", onclick: () => accept(item.conversation_id)}, "Accept"),
          el("button", {"data-testid": "decline", onclick: () => decline(item.conversation_id)}, "Decline")));
    }));
  }

  function renderTabs() {
    const mine = [...work.values()].filter((item) => item.state !== "offered");
    $("no-work").hidden = mine.length > 0;
    $("tabs").replaceChildren(...mine.map((item, index) => {
      const count = unread.get(item.conversation_id) || 0;
      return el("button", {
        class: `tab${item.conversation_id === selected ? " selected" : ""}`, role: "tab",
        "aria-selected": item.conversation_id === selected ? "true" : "false",
        "data-testid": "tab", dataset: {conversation: item.conversation_id},
        title: `Alt+${index + 1}`, onclick: () => select(item.conversation_id),
      }, icon(item.channel), el("span", {class: "tab-name"}, who(item)),
      item.state === "after_call_work" ? el("small", {class: "acw-tag"}, "wrap-up") : "",
      count ? el("span", {class: "unread", "data-testid": "unread"}, String(count)) : "");
    }));
  }

  function render() {
    renderOffers();
    renderTabs();
  }

  async function upsert(item) {
    const known = work.get(item.conversation_id) || {};
    work.set(item.conversation_id, {...known, ...item});
    render();
    try {
      await loadDetails(item.conversation_id);
      const fresh = details.get(item.conversation_id);
      work.set(item.conversation_id, {...work.get(item.conversation_id),
        customer_name: fresh.customer_name});
      render();
      if (item.conversation_id === selected) showDetails(fresh);
    } catch (error) {
      if (!(error instanceof flowlang.ApiError)) throw error;
    }
  }

  function drop(id, reason) {
    work.delete(id);
    details.delete(id);
    unread.delete(id);
    acwSince.delete(id);
    if (selected === id) {
      selected = null;
      $("conversation").hidden = true;
      $("details").hidden = true;
      const next = [...work.values()].find((item) => item.state !== "offered");
      if (next) select(next.conversation_id);
    }
    if (reason) notice(reason);
    render();
    renderAcw();
  }

  // ------------------------------------------------------------------ actions
  async function accept(id) {
    try {
      await api("POST", path(id, "accept"));
      work.set(id, {...work.get(id), state: "assigned"});
      render();
      await select(id);
    } catch (error) {
      notice(error.message, "error");
    }
  }

  async function decline(id) {
    try {
      await api("POST", path(id, "decline"));
      drop(id, "Offer declined: it goes to another agent.");
    } catch (error) {
      notice(error.message, "error");
    }
  }

  // ------------------------------------------------------------------ conversation
  async function select(id) {
    if (selected && selected !== id) drafts.set(selected, $("reply-text").value);
    const mine = ++shown;
    selected = id;
    unread.delete(id);
    render();
    $("conversation").hidden = false;
    $("details").hidden = false;
    $("reply-text").value = drafts.get(id) || "";
    $("reply-error").hidden = true;
    $("complete-error").hidden = true;
    $("messages").replaceChildren();
    before = null;
    try {
      const info = details.get(id) || await loadDetails(id);
      if (mine !== shown) return;
      showDetails(info);
      await loadHistory(true, mine);
    } catch (error) {
      if (!(error instanceof flowlang.ApiError)) throw error;
      notice(error.message, "error");  // e.g. it was taken away meanwhile
      return;
    }
    measure();
  }

  function showDetails(info) {
    const item = work.get(info.conversation_id) || {};
    $("conv-channel").replaceWith(Object.assign(icon(info.channel.key), {id: "conv-channel"}));
    $("conv-customer").textContent = info.customer_name || info.customer_id;
    $("conv-state").textContent = `${info.channel.name} · ${info.account} · ${item.state || info.state}`;
    showWindow(info.window.text, info.window.open || !info.window.closes_at);
    $("identities").replaceChildren(...info.identities.flatMap((identity) =>
      [el("dt", {}, identity.kind), el("dd", {}, identity.value)]));
    showData("participant-data", info.participant_data);
    showData("conversation-data", info.conversation_data);
    $("flow-path").textContent = info.flow_path.join(" › ") || "—";
    $("routing").textContent = `Queue ${info.queue || "—"}` +
      (info.skills.length ? ` · skills ${info.skills.join(", ")}` : "");
    const publicPost = info.channel.public;
    $("visibility").hidden = !(publicPost && info.channel.private_reply);
    $("quick-replies").hidden = info.channel.max_quick_replies === 0;
    $("quick-replies").placeholder = `Up to ${info.channel.max_quick_replies} quick replies: a, b`;
    $("quick-replies").title =
      `Quick replies, comma-separated (${info.channel.name} shows up to ${info.channel.max_quick_replies})`;
    showTemplates(info);
    showCanned(info);
    // Details come again on every window event: a choice made in these selects stays.
    keepChoice("transfer-to", info.conversation_id, () => $("transfer-to").replaceChildren(
      el("option", {value: ""}, "Transfer to…"),
      el("optgroup", {label: "Queues"}, ...info.queues.map((q) => el("option", {value: `queue:${q}`}, q))),
      el("optgroup", {label: "Agents"}, ...info.agents.map((a) => el("option", {value: `agent:${a}`}, a)))));
    keepChoice("wrap-up", info.conversation_id, () => $("wrap-up").replaceChildren(
      el("option", {value: ""}, info.wrap_up.required ? "Wrap-up code (required)" : "Wrap-up code"),
      ...info.wrap_up.codes.map((code) => el("option", {value: code}, code))));
    const acw = (item.state || info.state) === "after_call_work";
    if (acw && item.wrap_up) $("wrap-up").value = item.wrap_up;
    $("complete-button").textContent =
      acw ? (item.wrap_up ? "End after-call work" : "Give wrap-up code") : "Complete";
    $("reply").hidden = acw;
  }

  // What the flow stored (`set participant data` / `set conversation data`), key by key.
  function showData(id, stored) {
    const data = Object.entries(stored || {});
    $(id).replaceChildren(...(data.length ? data.flatMap(([key, value]) =>
      [el("dt", {}, key), el("dd", {}, typeof value === "object" ? JSON.stringify(value) : String(value))])
      : [el("dd", {class: "muted"}, "none")]));
  }

  // Refill a select; the value chosen stays when it is the same conversation's and still offered.
  function keepChoice(id, conversation, refill) {
    const node = $(id);
    const chosen = node.dataset.conversation === conversation ? node.value : "";
    refill();
    node.dataset.conversation = conversation;
    if (chosen && [...node.options].some((option) => option.value === chosen)) node.value = chosen;
  }

  function showWindow(text, open) {
    const node = $("window");
    node.textContent = text;
    node.hidden = !text;
    node.className = `window ${open ? "open" : "closed"}`;
  }

  function showTemplates(info) {
    const only = info.window.templates_only;
    $("templates").hidden = !only;
    $("reply").classList.toggle("blocked", only);
    if (!only) return;
    const select = $("template-name");
    const current = select.value;
    select.replaceChildren(...info.templates.map((t) =>
      el("option", {value: t.name, disabled: t.status !== "APPROVED"}, `${t.name} (${t.status})`)));
    if (current) select.value = current;
    templateParams();
  }

  // The parameters' inputs for the chosen template. Details come again on every window event
  // and after a refused send: what the agent typed for the same template stays.
  function templateParams() {
    const info = details.get(selected);
    const chosen = info && info.templates.find((t) => t.name === $("template-name").value);
    const node = $("template-params");
    const key = chosen ? `${info.conversation_id}\n${chosen.name}` : "";
    const typed = node.dataset.key === key ?
      new Map([...node.querySelectorAll("input")].map((input) => [input.name, input.value])) :
      new Map();
    $("template-text").textContent = chosen ? chosen.text : "";
    node.dataset.key = key;
    node.replaceChildren(...(chosen ? chosen.parameters : []).map((name) =>
      el("label", {class: "param"}, name, el("input", {
        type: "text", name, required: true, "data-testid": `param-${name}`,
        value: typed.has(name) ? typed.get(name) :
          name === "name" && info.customer_name ? info.customer_name : "",
      }))));
  }

  function showCanned(info) {
    const query = $("canned-search").value.trim().toLowerCase();
    const shown = info.canned.filter((c) =>
      !query || c.name.toLowerCase().includes(query) || c.text.toLowerCase().includes(query));
    $("canned").replaceChildren(...shown.map((c) => el("li", {},
      el("button", {type: "button", class: "canned-item", "data-testid": "canned-item",
        onclick: () => insert(c.text)}, el("strong", {}, c.name), el("span", {}, c.text)))));
  }

  function insert(text) {
    const box = $("reply-text");
    const start = box.selectionStart ?? box.value.length;
    box.value = box.value.slice(0, start) + text + box.value.slice(box.selectionEnd ?? start);
    box.focus();
    measure();
  }

  // A card, carousel or buttons message shows what the customer was offered: each item's title
  // and subtitle, its link as text. Items are a template's own; a shaped message sent to Meta or
  // LINE also holds them as `elements` or `columns`.
  const RICH_KINDS = new Set(["card", "carousel", "buttons"]);

  function itemsOf(content) {
    const given = content.items || content.elements || content.columns || [];
    return given.map((i) => typeof i === "string" ? {title: i} : {
      title: String(i.title || i.text || i.label || ""),
      subtitle: String(i.subtitle || (i.title && i.text) || ""),
      url: String(i.url || (i.default_action && i.default_action.url) || ""),
    }).filter((i) => i.title || i.subtitle);
  }

  const itemNode = (item) => el("li", {class: "item", "data-testid": "item"},
    el("strong", {}, item.title), item.subtitle ? el("span", {}, ` · ${item.subtitle}`) : "",
    /^https?:\/\//.test(item.url) ? el("span", {class: "item-url"}, ` · ${item.url}`) : "");

  function messageNode(message, info) {
    const content = message.content || {};
    const inbound = message.direction === "in";
    const items = RICH_KINDS.has(content.kind) ? itemsOf(content) : [];
    const text = content.text || content.caption || content.url
      || (items.length ? "" : `[${content.kind || "message"}]`);
    const publicPost = inbound && info && info.channel.public && content.visibility !== "private";
    const failed = message.delivery && message.delivery.status === "failed"
      ? notDelivered(message.delivery.error) : undelivered.get(message.message_id);
    const node = el("li", {class: `message ${inbound ? "in" : "out"}`, "data-testid": "message",
                     dataset: {seq: message.seq, messageId: message.message_id || ""}},
      el("div", {class: "meta"}, inbound ? who(info || {}) : message.sender, " · ",
        `${day(message.at)} ${clock(message.at)}`,
        message.conversation_id !== selected ? el("span", {class: "earlier-conv"}, " · earlier conversation") : "",
        publicPost ? el("span", {class: "public", "data-testid": "public"}, "public") : ""),
      el("div", {class: "text"}, text),
      content.kind === "link" && content.text && /^https?:\/\//.test(content.url || "")
        ? el("a", {class: "link", href: content.url, rel: "noopener noreferrer", target: "_blank",
                   "data-testid": "link"}, content.url) : "",
      content.options ? el("div", {class: "options", "data-testid": "options"},
        ...content.options.map((o) => el("span", {class: "option"}, o))) : "",
      items.length ? el("ul", {class: "items", "data-testid": "items"}, ...items.map(itemNode)) : "");
    if (failed) markUndelivered(node, failed);
    return node;
  }

  // The sender's error starts with its channel ("whatsapp: HTTP 400, ..."): the page shows it.
  const notDelivered = (error) => `Not delivered: ${String(error || "").replace(/^[a-z_]+: /, "")}`;

  // A sent message the vendor never got: the bubble says so, with the reason.
  function markUndelivered(node, text) {
    node.classList.add("undelivered");
    const said = node.querySelector(".not-delivered") ||
      node.appendChild(el("div", {class: "not-delivered", role: "status", "data-testid": "not-delivered"}));
    said.textContent = text;
  }

  async function loadHistory(first, mine = shown) {
    const id = selected;
    const query = new URLSearchParams({limit: String(PAGE)});
    if (!first && before !== null) query.set("before", String(before));
    const page = await api("GET", `${path(id, "history")}?${query}`);
    if (mine !== shown) return;
    const info = details.get(id);
    const nodes = page.messages.map((m) => messageNode(m, info));
    const box = $("history");
    const height = box.scrollHeight;
    if (first) {
      // A reply sent or a message streamed while this page was loading stays, unless the
      // page has it already.
      const loaded = new Set(nodes.map(messageKey));
      const meanwhile = [...$("messages").children].filter((n) => !loaded.has(messageKey(n)));
      $("messages").replaceChildren(...nodes, ...meanwhile);
    } else {
      $("messages").prepend(...nodes);
    }
    before = page.before;
    $("load-earlier").hidden = before === null;
    $("history-start").hidden = before !== null;
    box.scrollTop = first ? box.scrollHeight : box.scrollHeight - height;
  }

  // A message's identity on the page: its outbox id when sent, else its place in the history.
  const messageKey = (node) => node.dataset.messageId ? `id:${node.dataset.messageId}`
    : node.dataset.seq ? `seq:${node.dataset.seq}` : node;

  function appendMessage(message) {
    const info = details.get(selected);
    const node = messageNode(message, info);
    const key = messageKey(node);
    if ([...$("messages").children].some((n) => messageKey(n) === key)) return;  // the history's
    $("messages").append(node);
    $("history").scrollTop = $("history").scrollHeight;
  }

  // ------------------------------------------------------------------ reply
  function measure() {
    clearTimeout(measureTimer);
    measureTimer = setTimeout(async () => {
      if (!selected) return;
      const id = selected;
      try {
        const found = await api("POST", path(id, "measure"), {text: $("reply-text").value});
        if (id !== selected) return;
        $("counter").textContent = found.text;
        $("counter").classList.toggle("over", found.left < 0);
      } catch (error) {
        if (!(error instanceof flowlang.ApiError)) throw error;
      }
    }, 120);
  }

  function showBlock(error, where) {
    const detail = error.detail || {};
    const node = $(where);
    node.textContent = detail.suggestion ? `${error.message} — ${detail.suggestion}` : error.message;
    node.hidden = false;
  }

  async function sendReply(event) {
    event.preventDefault();
    const id = selected;
    const text = $("reply-text").value;
    const link = $("attachment").value.trim();
    const options = $("quick-replies").hidden ? [] :
      $("quick-replies").value.split(",").map((o) => o.trim()).filter(Boolean);
    if (!text.trim() && !link) return;
    const body = {text};
    // Quick replies and a link together: the buttons, their text ending with the link.
    if (options.length) body.content = {kind: "quick_replies", text: link ? `${text}\n${link}`.trim() : text, options};
    else if (link) body.content = {kind: "link", url: link, text};
    const visibility = document.querySelector("input[name=visibility]:checked");
    if (!$("visibility").hidden && visibility) body.visibility = visibility.value;
    $("reply-error").hidden = true;
    try {
      const result = await api("POST", path(id, "reply"), body);
      $("reply-text").value = "";
      $("attachment").value = "";
      $("quick-replies").value = "";
      drafts.delete(id);
      for (const delivery of result.deliveries) {
        appendMessage({seq: "", conversation_id: id, direction: "out", sender: "you",
                       at: new Date().toISOString(), content: delivery.content,
                       message_id: delivery.message_id});
        if (delivery.status === "degraded") notice(`Queued, changed: ${delivery.reason}`);
      }
      measure();
    } catch (error) {
      if (!(error instanceof flowlang.ApiError)) throw error;
      if (error.status === 409) {
        // the window or the work changed: the conversation as it is now, then why (the text
        // stays in the box)
        try {
          const info = await loadDetails(id);
          if (selected === id) showDetails(info);
        } catch (reload) {
          if (!(reload instanceof flowlang.ApiError)) throw reload;
        }
      }
      showBlock(error, "reply-error");
    }
  }

  async function sendTemplate(event) {
    event.preventDefault();
    const id = selected;
    const parameters = {};
    for (const input of $("template-params").querySelectorAll("input")) {
      parameters[input.name] = input.value;
    }
    try {
      const result = await api("POST", path(id, "reply"),
        {template: $("template-name").value, parameters});
      for (const delivery of result.deliveries) {
        appendMessage({seq: "", conversation_id: id, direction: "out", sender: "you",
                       at: new Date().toISOString(), content: delivery.content,
                       message_id: delivery.message_id});
      }
      $("reply-error").hidden = true;
      notice(`Template ${$("template-name").value} queued.`);
    } catch (error) {
      if (!(error instanceof flowlang.ApiError)) throw error;
      showBlock(error, "reply-error");
    }
  }

  // ------------------------------------------------------------------ transfer, complete
  async function transfer(event) {
    event.preventDefault();
    const id = selected;
    const [kind, name] = $("transfer-to").value.split(/:(.*)/s);
    try {
      await api("POST", path(id, "transfer"), {[kind]: name});
      drop(id, `Transferred to ${name}.`);
    } catch (error) {
      if (!(error instanceof flowlang.ApiError)) throw error;
      notice(error.message, "error");
    }
  }

  async function complete(event) {
    event.preventDefault();
    const id = selected;
    const code = $("wrap-up").value || null;
    const item = work.get(id);
    $("complete-error").hidden = true;
    try {
      if (item && item.state === "after_call_work") {
        if (!code && !item.wrap_up) {
          $("complete-error").textContent = "Choose the wrap-up code.";
          $("complete-error").hidden = false;
          return;
        }
        await api("POST", path(id, "wrap-up"), {wrap_up: code || item.wrap_up});
        drop(id, "After-call work done.");
        return;
      }
      await api("POST", path(id, "complete"), {wrap_up: code});
      const mine = await api("GET", "/api/agent/interactions");
      const still = mine.find((w) => w.conversation_id === id);
      if (still && still.state === "after_call_work") {
        work.set(id, {...work.get(id), state: "after_call_work", wrap_up: still.wrap_up});
        if (!acwSince.has(id)) acwSince.set(id, new Date());
        render();
        renderAcw();
        if (selected === id) showDetails(details.get(id));
      } else {
        drop(id, "Completed.");
      }
    } catch (error) {
      if (!(error instanceof flowlang.ApiError)) throw error;
      showBlock(error, "complete-error");
    }
  }

  function renderAcw() {
    const node = $("acw");
    const first = [...acwSince.entries()][0];
    node.hidden = !first;
    if (first) node.textContent = `After-call work ${since(first[1].toISOString())}`;
  }

  // ------------------------------------------------------------------ the live stream
  // The ACD's presence; "not_responding" is its own (an offer went unanswered), never chosen.
  function showPresence(state) {
    $("presence").value = state;
    if (state === "not_responding") {
      notice("You did not answer an offer in time: no offers come until you choose Available.",
        "error");
    }
  }

  function connect() {
    const stream = new EventSource("/api/agent/stream");
    const on = (type, handle) => stream.addEventListener(type, (event) => handle(JSON.parse(event.data)));
    stream.addEventListener("open", () => { $("live").textContent = "live"; $("live").className = "live on"; });
    stream.addEventListener("error", () => { $("live").textContent = "reconnecting…"; $("live").className = "live"; });
    on("hello", (data) => {
      showPresence(data.presence);
      for (const id of [...work.keys()]) if (!data.work.some((w) => w.conversation_id === id)) drop(id);
      for (const item of data.work) {
        if (item.state === "after_call_work" && !acwSince.has(item.conversation_id)) {
          acwSince.set(item.conversation_id, new Date());
        }
        upsert(item);
      }
      if (!selected) {
        const first = data.work.find((w) => w.state !== "offered");
        if (first) select(first.conversation_id);
      }
    });
    on("offer", (data) => { upsert({...data, state: "offered"}); notice(`New offer in ${data.queue || "a queue"}.`); });
    on("assigned", (data) => {
      upsert({...data, state: "assigned"});
      if (!selected) select(data.conversation_id);
    });
    on("withdrawn", (data) => {
      // the agent's own transfer or completion already dropped it, with its own notice
      if (!work.has(data.conversation_id)) return;
      drop(data.conversation_id, `Interaction ${data.conversation_id} left you (${data.reason}).`);
    });
    on("after_call_work", (data) => {
      const item = work.get(data.conversation_id);
      if (!item) return;
      work.set(data.conversation_id, {...item, state: "after_call_work"});
      acwSince.set(data.conversation_id, new Date());
      render();
      renderAcw();
      if (selected === data.conversation_id) showDetails(details.get(selected));
    });
    on("message", (data) => {
      if (!work.has(data.conversation_id)) return;
      if (data.conversation_id === selected) {
        appendMessage({seq: data.seq || "", conversation_id: data.conversation_id, direction: "in",
                       sender: "customer", at: data.at || new Date().toISOString(),
                       content: {kind: data.kind, text: data.text}});
      } else {
        unread.set(data.conversation_id, (unread.get(data.conversation_id) || 0) + 1);
        render();
      }
    });
    on("window", (data) => {
      const info = details.get(data.conversation_id);
      if (info && data.conversation_id === selected) {
        loadDetails(data.conversation_id).then((fresh) => {
          if (selected === data.conversation_id) showDetails(fresh);
        }, () => {});
      }
    });
    on("delivery_failed", (data) => {
      if (!data.message_id) return;
      const text = notDelivered(data.error);
      undelivered.set(data.message_id, text);
      const node = document.querySelector(`li.message[data-message-id="${CSS.escape(data.message_id)}"]`);
      if (node) markUndelivered(node, text);
      notice(data.text, "error");
    });
    on("presence", (data) => showPresence(data.state));
    on("closed", () => { stream.close(); window.location.assign("/signin"); });
  }

  // ------------------------------------------------------------------ wiring
  $("presence").addEventListener("change", async () => {
    try {
      const answer = await api("PUT", "/api/agent/presence", {state: $("presence").value});
      $("presence").value = answer.state;
      notice(`You are ${answer.state}.`);
    } catch (error) {
      notice(error.message, "error");
    }
  });
  $("reply").addEventListener("submit", sendReply);
  $("templates").addEventListener("submit", sendTemplate);
  $("template-name").addEventListener("change", templateParams);
  $("transfer").addEventListener("submit", transfer);
  $("complete").addEventListener("submit", complete);
  $("reply-text").addEventListener("input", measure);
  $("load-earlier").addEventListener("click", () => loadHistory(false).catch((error) => {
    if (!(error instanceof flowlang.ApiError)) throw error;
    notice(error.message, "error");
  }));
  $("canned-search").addEventListener("input", () => {
    const info = details.get(selected);
    if (info) showCanned(info);
  });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey && event.key === "Enter" && document.activeElement === $("reply-text")) {
      event.preventDefault();
      $("reply").requestSubmit();
      return;
    }
    if (!event.altKey) return;
    const offer = [...work.values()].find((item) => item.state === "offered");
    const tabs = [...work.values()].filter((item) => item.state !== "offered");
    const key = event.key.toLowerCase();
    if (key === "a" && offer) accept(offer.conversation_id);
    else if (key === "d" && offer) decline(offer.conversation_id);
    else if (key === "r" && selected) $("reply-text").focus();
    else if (key === "k" && selected) $("canned-search").focus();
    else if (key === "w" && selected) $("wrap-up").focus();
    else if (key === "p") $("presence").focus();
    else if (/^[1-9]$/.test(key) && tabs[Number(key) - 1]) select(tabs[Number(key) - 1].conversation_id);
    else return;
    event.preventDefault();
  });
  // What no stream event says (after-call work that ended on its own): checked now and then.
  setInterval(async () => {
    try {
      const mine = await api("GET", "/api/agent/interactions");
      for (const id of [...work.keys()]) {
        if (!mine.some((w) => w.conversation_id === id)) drop(id);
      }
    } catch (error) {
      if (!(error instanceof flowlang.ApiError)) throw error;
    }
  }, 10000);
  setInterval(() => {
    for (const node of document.querySelectorAll(".tick[data-since]")) {
      node.textContent = `waiting ${since(node.dataset.since)}`;
    }
    for (const node of document.querySelectorAll(".tick[data-until]")) {
      node.textContent = ` · ${left(node.dataset.until)} to answer`;
    }
    renderAcw();
  }, 1000);
  connect();
})();
