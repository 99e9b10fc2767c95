// <kc-chat>: one session's conversation, live. Every event of the session's stream is rendered by the
// handler named after its type; the composer sends (Enter), adds a line (Shift-Enter), steers a running
// turn, and Esc cancels it.

import { api, el, readAsDataUrl } from "./api.js";
import { renderMarkdown } from "./md.js";

const DECISION_LABELS = { allow: "Allow", allow_session: "Allow for this session", deny: "Deny" };
const MODES = ["instant", "thinking", "agent", "swarm", "plan"];

class KcChat extends HTMLElement {
  connectedCallback() {
    this.sessionId = null;
    this.log = el("div", { class: "log", role: "log", "aria-live": "polite" });
    this.todo = el("ul", { class: "todo" });
    this.tasks = el("ul", { class: "tasks" });
    this.input = el("textarea", { rows: "2", placeholder: "Message (Enter sends, Shift-Enter new line, Esc cancels)", "aria-label": "Message" });
    this.images = [];
    this.attached = el("span", { class: "attached" });
    const file = el("input", { type: "file", accept: "image/*", multiple: "", hidden: "", onchange: (e) => this.attach(e.target.files) });
    this.mode = el("select", { class: "mode", "aria-label": "Mode", onchange: () => this.setMode() }, ...MODES.map((m) => el("option", { value: m }, m)));
    this.sendButton = el("button", { class: "send", onclick: () => this.submit() }, "Send");
    this.cancelButton = el("button", { class: "cancel", hidden: "", onclick: () => this.cancel() }, "Cancel");
    const composer = el("div", { class: "composer" }, this.input,
      el("div", { class: "actions" }, el("button", { class: "attach", title: "Attach images", onclick: () => file.click() }, "Image…"),
        file, this.attached, this.mode, this.cancelButton, this.sendButton));
    this.append(el("div", { class: "panels" }, el("details", { class: "todo-panel", open: "" }, el("summary", {}, "Todo"), this.todo),
      el("details", { class: "tasks-panel" }, el("summary", {}, "Background tasks"), this.tasks)), this.log, composer);
    this.input.addEventListener("keydown", (e) => this.key(e));
    this.log.addEventListener("scroll", () => (this.following = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40));
    this.input.addEventListener("paste", (e) => this.attach([...e.clipboardData.files].filter((f) => f.type.startsWith("image/"))));
    document.addEventListener("keydown", (e) => e.key === "Escape" && this.running && this.cancel());
  }

  follow(session) {
    if (this.source) this.source.close();
    this.sessionId = session.id;
    this.log.replaceChildren();
    this.todo.replaceChildren();
    this.tasks.replaceChildren();
    this.current = null;
    this.calls = new Map();
    this.setRunning(false);
    this.mode.value = session.mode || "agent";
    // The browser reconnects by itself and sends Last-Event-ID: the stream resumes where it stopped.
    this.source = new EventSource(`/sessions/${encodeURIComponent(session.id)}/events`);
    this.source.onmessage = (message) => this.handle(JSON.parse(message.data));
    this.input.focus();
  }

  status(text) {
    this.dispatchEvent(new CustomEvent("status", { detail: text }));
  }

  key(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    } else if (event.key === "Escape" && this.running) {
      event.preventDefault();
      this.cancel();
    }
  }

  async attach(files) {
    for (const file of files) this.images.push(await readAsDataUrl(file));
    this.attached.textContent = this.images.length ? `${this.images.length} image(s)` : "";
  }

  async submit() {
    const text = this.input.value;
    if (!this.sessionId || (!text.trim() && !this.images.length)) return;
    try {
      if (this.running) await api("POST", `/sessions/${this.sessionId}/steer`, { text });
      else await api("POST", `/sessions/${this.sessionId}/messages`, { text, images: this.images });
      this.input.value = "";
      this.images = [];
      this.attached.textContent = "";
    } catch (error) {
      this.notice(error.message, "error");
    }
  }

  async cancel() {
    if (this.sessionId) await api("POST", `/sessions/${this.sessionId}/cancel`).catch((e) => this.notice(e.message, "error"));
  }

  async setMode() {
    try {
      await api("POST", `/sessions/${this.sessionId}/mode`, { mode: this.mode.value });
      this.notice(`mode: ${this.mode.value}`);
    } catch (error) {
      this.notice(error.message, "error");
    }
  }

  setRunning(running) {
    this.running = running;
    this.cancelButton.hidden = !running;
    this.sendButton.textContent = running ? "Steer" : "Send";
    this.classList.toggle("running", running);
  }

  // Changes to the log keep it scrolled to the end while the reader follows it (a reader who scrolled up
  // to read is left alone); ``following`` changes only when the reader scrolls.
  stick(change) {
    const result = change();
    if (this.following !== false) this.log.scrollTop = this.log.scrollHeight;
    return result;
  }

  add(node) {
    return this.stick(() => this.log.appendChild(node));
  }

  notice(text, kind = "") {
    this.add(el("div", { class: `notice ${kind}` }, text));
  }

  handle(event) {
    const handler = this[`on_${event.type}`];
    if (handler) handler.call(this, event);
  }

  on_system(event) {
    this.status(`${event.model} · ${event.mode} · ${event.cwd}`);
  }

  on_history(event) {
    for (const message of event.messages) this.add(this.bubble(message.role, message.text));
  }

  bubble(role, text) {
    const node = el("div", { class: `msg ${role}` });
    if (role === "user") node.textContent = text;
    else node.innerHTML = renderMarkdown(text); // escaped first, see md.js
    return node;
  }

  on_user(event) {
    this.current = null;
    this.thinking = null;
    if (!event.agent) this.setRunning(true);
    this.add(this.bubble("user", event.content + (event.images ? ` [${event.images} image(s)]` : "")));
  }

  on_text_delta(event) {
    if (event.agent) return;
    if (!this.current) this.current = this.add(el("div", { class: "msg assistant" }));
    this.current.dataset.text = (this.current.dataset.text || "") + event.text;
    this.stick(() => (this.current.innerHTML = renderMarkdown(this.current.dataset.text)));
  }

  on_thinking_delta(event) {
    if (event.agent) return;
    if (!this.thinking) this.thinking = this.add(el("details", { class: "thinking" }, el("summary", {}, "thinking"), el("div")));
    this.thinking.lastChild.textContent += event.text;
  }

  on_assistant(event) {
    if (!event.agent) {
      this.current = null;
      this.thinking = null;
    }
  }

  on_tool_use(event) {
    this.current = null;
    const detail = event.name === "bash" ? event.input.command : JSON.stringify(event.input);
    const card = el("details", { class: "tool running", "data-call": event.id },
      el("summary", {}, el("b", {}, event.name), " ", el("code", {}, String(detail).slice(0, 200))), el("pre", { class: "output" }));
    this.calls.set(event.id, card);
    this.add(card);
  }

  on_tool_result(event) {
    const card = this.calls.get(event.id);
    if (!card) return;
    card.classList.remove("running");
    card.classList.add(event.is_error ? "failed" : "done");
    card.querySelector(".output").textContent = event.content;
  }

  on_image(event) {
    if (!/^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+$/.test(event.data_url)) return;
    const image = el("img", { class: "shot", alt: event.label || "image", src: event.data_url });
    image.addEventListener("load", () => this.stick(() => null));
    const card = this.calls.get(event.call_id);
    if (card) {
      card.open = true;
      card.append(image);
    } else this.add(image);
  }

  on_approval_request(event) {
    const card = el("div", { class: "approval", "data-call": event.call_id },
      el("div", { class: "what" }, el("b", {}, event.summary || event.tool), event.reason ? ` — ${event.reason}` : ""));
    if (event.tool === "bash" && event.arguments.command) card.append(el("pre", { class: "command" }, event.arguments.command));
    if (event.tool === "propose_plan") card.append(el("div", { class: "plan" }));
    if (event.diff) {
      const diff = el("pre", { class: "diff" });
      for (const line of event.diff.split("\n")) {
        const kind = line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "";
        diff.append(el("span", { class: kind }, line + "\n"));
      }
      card.append(diff);
    }
    if (event.tool === "propose_plan") card.querySelector(".plan").innerHTML = renderMarkdown(event.arguments.plan || "");
    const buttons = el("div", { class: "buttons" });
    for (const option of event.options) {
      const label = event.tool === "propose_plan" ? { allow: "Start, ask before edits", allow_session: "Start, allow edits", deny: "Keep planning" }[option] : DECISION_LABELS[option];
      buttons.append(el("button", { class: `decide ${option}`, "data-decision": option, onclick: () => this.decide(event.call_id, option) }, label || option));
    }
    card.append(buttons);
    this.add(card);
    buttons.firstChild.focus();
  }

  async decide(callId, decision) {
    try {
      await api("POST", `/sessions/${this.sessionId}/approvals/${encodeURIComponent(callId)}`, { decision });
    } catch (error) {
      this.notice(error.message, "error");
    }
  }

  on_approval_resolved(event) {
    const card = this.log.querySelector(`.approval[data-call="${CSS.escape(event.call_id)}"]`);
    if (!card) return;
    card.classList.add("answered", event.decision);
    for (const button of card.querySelectorAll("button")) button.disabled = true;
    card.querySelector(".buttons").append(el("span", { class: "decision" }, { deny: "denied", cancelled: "cancelled" }[event.decision] || "allowed"));
    this.input.focus();
  }

  on_todo(event) {
    if (event.agent) return;
    this.todo.replaceChildren(...event.items.map((item) => el("li", { class: item.status }, item.content)));
  }

  on_task(event) {
    let row = this.tasks.querySelector(`[data-task="${CSS.escape(event.task_id)}"]`);
    if (!row) row = this.tasks.appendChild(el("li", { "data-task": event.task_id }));
    row.className = event.state;
    row.textContent = `${event.state}: ${event.command}${event.last_line ? ` — ${event.last_line}` : ""}`;
  }

  on_usage(event) {
    if (event.agent) return;
    // total_cost is null where the endpoint's prices are not known: then no cost is shown
    const cost = event.total_cost == null ? "" : `$${Number(event.total_cost).toFixed(4)} · `;
    this.status(`${cost}${event.context_tokens.toLocaleString()} tokens in context`);
  }

  on_refused(event) {
    this.notice(`refused ${event.summary} (${event.reason})`, "error");
  }

  on_notice(event) {
    this.notice(event.message);
  }

  on_error(event) {
    this.notice(event.message, event.retrying ? "" : "error");
  }

  on_gap(event) {
    this.notice(`events ${event.from}–${event.to} are no longer available`);
  }

  on_result(event) {
    this.setRunning(false);
    this.dispatchEvent(new CustomEvent("turn-ended"));
    this.current = null;
    if (event.error_kind === "interrupted") this.notice("cancelled", "error");
    else if (event.is_error) this.notice(event.result, "error");
    else if (event.submitted && event.result) this.add(this.bubble("assistant", event.result));
    this.input.focus();
  }
}

customElements.define("kc-chat", KcChat);
