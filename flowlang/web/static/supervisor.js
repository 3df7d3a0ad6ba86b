// The supervisor dashboard: queues, the longest active interactions and agents, live from the
// service's stream (a `snapshot` after every change); wait times tick in the page between two.
"use strict";

(() => {
  const {api, notice, el, pageData} = flowlang;
  const MEDIA = ["message", "social_dm", "social_public"];
  const MEDIA_SHORT = {message: "Messages", social_dm: "DMs", social_public: "Public"};
  const PRESENCE = ["available", "away", "offline"];
  // Set by the ACD alone (an offer went unanswered), never chosen: shown, not offered.
  const NOT_RESPONDING = "not_responding";
  const data = pageData();
  let skew = 0; // the service's clock minus the browser's, in ms

  const queues = document.getElementById("queues-body");
  const media = document.getElementById("media");
  const agents = document.getElementById("agents-body");
  const status = document.getElementById("live-status");
  const updated = document.getElementById("updated");

  // "42 s", "3 min 05 s", "2 h 07 min", "3 d 4 h".
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.max(0, Math.floor(seconds));
    const two = (n) => String(n).padStart(2, "0");
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${two(s % 60)} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${two(Math.floor(s / 60) % 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor(s / 3600) % 24} h`;
  }

  function percent(value) {
    return value === null || value === undefined ? "—" : `${Math.round(value * 100)} %`;
  }

  function clock(iso) {
    if (!iso) return "";
    return new Date(iso).toISOString().slice(11, 16) + " UTC";
  }

  // A duration that grows by itself: from `since` to now, refreshed every second.
  function since(iso) {
    if (!iso) return el("span", {class: "muted"}, "—");
    return el("span", {class: "ticking", dataset: {since: iso}}, tickText(iso));
  }

  function tickText(iso) {
    return duration((Date.now() + skew - Date.parse(iso)) / 1000);
  }

  function tick() {
    for (const node of document.querySelectorAll(".ticking")) {
      node.textContent = tickText(node.dataset.since);
    }
  }

  function detailsLink(conversationId, text) {
    return el("a", {href: `/supervisor/interactions/${encodeURIComponent(conversationId)}`},
      text || conversationId);
  }

  function customer(item) {
    return item.customer_name ? `${item.customer_name} (${item.customer})` : item.customer;
  }

  // Members of the queue who get no offer until they set themselves available again.
  function notResponding(q, names) {
    if (!q.not_responding || !q.not_responding.length) return null;
    const who = q.not_responding.map((agent) => names.get(agent) || agent).join(", ");
    return [el("br"), el("small", {class: "not-responding", dataset: {field: "not-responding"},
      title: "They let an offer time out: no offer reaches them until they are available again."},
      `Not responding: ${who}`)];
  }

  function queueRow(q, names) {
    const target = `${percent(q.service_level_today)}`;
    return el("tr", {dataset: {queue: q.queue}},
      el("th", {scope: "row"}, q.queue, notResponding(q, names)),
      el("td", {class: "num", dataset: {field: "waiting"}}, q.waiting),
      el("td", {class: "num", dataset: {field: "longest-wait"}}, since(q.longest_waiting_since)),
      el("td", {class: "num", dataset: {field: "in-progress"}}, q.in_progress),
      el("td", {class: "num"}, q.routed_today),
      el("td", {class: "num"}, q.answered_today),
      el("td", {class: "num"}, q.abandoned_today),
      el("td", {class: "num"}, duration(q.average_wait_today)),
      el("td", {class: "num", dataset: {field: "service-level"},
        title: `answered within ${duration(q.answer_within)}`}, target));
  }

  function mediaCard(m) {
    const body = m.longest_conversation
      ? [el("p", {class: "big ticking", dataset: {since: m.longest_since}},
            tickText(m.longest_since)),
         el("p", {}, detailsLink(m.longest_conversation), ` · ${m.channel} · ${customer(m)}`)]
      : [el("p", {class: "big muted"}, "—"), el("p", {class: "muted"}, "nothing active")];
    const title = {
      message: "Longest message conversation",
      social_dm: "Longest social direct message",
      social_public: "Longest social conversation (public)",
    }[m.media];
    return el("section", {class: "card stat", dataset: {media: m.media}},
      el("h3", {}, title),
      el("p", {class: "muted"}, `${m.active} active`),
      ...body);
  }

  function presenceSelect(agent) {
    const select = el("select", {
      "aria-label": `Presence of ${agent.name}`,
      dataset: {focusKey: `presence:${agent.agent}`, agent: agent.agent},
      onchange: async (event) => {
        const state = event.target.value;
        try {
          await api("PUT", `/api/supervisor/agents/${encodeURIComponent(agent.agent)}/presence`,
            {state});
          notice(`${agent.name} is now ${state}.`);
        } catch (error) {
          notice(error.message, "error");
        }
      },
    }, [
      ...PRESENCE.map((s) => el("option", {value: s, selected: s === agent.presence}, s)),
      el("option", {value: NOT_RESPONDING, disabled: true,
        selected: agent.presence === NOT_RESPONDING}, "not responding"),
    ]);
    return select;
  }

  function heldItem(agent, item) {
    const pull = item.state === "active" && item.queue
      ? el("button", {
        type: "button",
        class: "small",
        dataset: {focusKey: `pull:${item.conversation_id}`},
        "aria-label": `Pull ${item.conversation_id} back to ${item.queue}`,
        onclick: async () => {
          try {
            await api("POST",
              `/api/supervisor/interactions/${encodeURIComponent(item.conversation_id)}/pull-back`);
            notice(`${item.conversation_id} is back in ${item.queue}.`);
          } catch (error) {
            notice(error.message, "error");
          }
        },
      }, "Pull back")
      : null;
    return el("li", {dataset: {conversation: item.conversation_id}},
      detailsLink(item.conversation_id), " ",
      el("span", {class: `tag ${item.state}`}, item.state.replaceAll("_", " ")), " ",
      `${item.channel} · ${customer(item)}`,
      item.since ? [" · ", since(item.since)] : null,
      pull ? [" ", pull] : null);
  }

  function agentRow(agent) {
    const load = MEDIA.filter((m) => agent.load[m].capacity > 0 || agent.load[m].held > 0)
      .map((m) => el("span", {class: "load", dataset: {media: m}},
        `${MEDIA_SHORT[m]} ${agent.load[m].held}/${agent.load[m].capacity}`));
    return el("tr", {dataset: {agent: agent.agent, presence: agent.presence}},
      el("th", {scope: "row"}, agent.name, el("br"), el("small", {}, agent.agent)),
      el("td", {}, el("span", {class: `dot ${agent.presence}`, "aria-hidden": "true"}),
        presenceSelect(agent)),
      el("td", {}, agent.since ? since(agent.since) : el("span", {class: "muted"}, "—")),
      el("td", {class: "loads"}, load),
      el("td", {}, agent.interactions.length
        ? el("ul", {class: "held"}, agent.interactions.map((i) => heldItem(agent, i)))
        : el("span", {class: "muted"}, "none")));
  }

  function render(snapshot) {
    skew = Date.parse(snapshot.at) - Date.now();
    // Re-rendering keeps the keyboard where it was.
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.focusKey : undefined;
    const names = new Map(snapshot.agents.map((a) => [a.agent, a.name]));
    queues.replaceChildren(...snapshot.queues.map((q) => queueRow(q, names)));
    media.replaceChildren(...snapshot.media.map(mediaCard));
    agents.replaceChildren(...snapshot.agents.map(agentRow));
    updated.textContent = `updated ${clock(snapshot.at)}`;
    updated.dataset.version = snapshot.version;
    if (focused) {
      const again = document.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  function connect() {
    const stream = new EventSource("/api/supervisor/stream");
    stream.addEventListener("open", () => {
      status.textContent = "live";
      status.className = "live on";
    });
    stream.addEventListener("error", () => {
      status.textContent = "reconnecting…";
      status.className = "live off";
      // The browser retries by itself after a dropped connection, not after a refusal (the
      // service restarted with the session gone, say): try again, through the API, which
      // sends a signed-out browser to the sign-in page.
      if (stream.readyState === EventSource.CLOSED) setTimeout(retry, 3000);
    });
    stream.addEventListener("snapshot", (event) => render(JSON.parse(event.data)));
    stream.addEventListener("closed", (event) => {
      stream.close();
      notice(JSON.parse(event.data).reason, "error");
      window.location.assign("/signin");
    });
  }

  async function retry() {
    try {
      render(await api("GET", "/api/supervisor/dashboard"));
      connect();
    } catch (error) {
      notice(error.message, "error");
      setTimeout(retry, 10000);
    }
  }

  if (data.snapshot) render(data.snapshot);
  setInterval(tick, 1000);
  connect();
})();
