// The agent workspace: presence and the agent's interactions, live from the stream.
"use strict";

(() => {
  const {api, notice, el} = flowlang;
  const presence = document.getElementById("presence");
  const list = document.getElementById("work");
  const work = new Map();

  function render() {
    list.replaceChildren(...[...work.values()].map((item) =>
      el("li", {dataset: {conversation: item.conversation_id}},
        `${item.channel} · ${item.customer_name || item.customer_id} · ${item.state}`)));
  }

  presence.addEventListener("change", async () => {
    try {
      const answer = await api("PUT", "/api/agent/presence", {state: presence.value});
      presence.value = answer.state;
      notice("");
    } catch (error) {
      notice(error.message, "error");
    }
  });

  const stream = new EventSource("/api/agent/stream");
  stream.addEventListener("hello", (event) => {
    const data = JSON.parse(event.data);
    presence.value = data.presence;
    work.clear();
    for (const item of data.work) work.set(item.conversation_id, item);
    render();
  });
  stream.addEventListener("presence", (event) => {
    presence.value = JSON.parse(event.data).state;
  });
})();
