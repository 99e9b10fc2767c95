// The web UI: <kc-app> holds the session list and the chat; the chat follows one session's event stream
// (server-sent events: each message one stream-json object) and renders it. Untrusted text goes in as
// text nodes, or through renderMarkdown, which escapes it first.

import { api, el } from "./api.js";
import "./chat.js";

class KcApp extends HTMLElement {
  connectedCallback() {
    this.innerHTML = "";
    this.sidebar = el("aside", { class: "sidebar" });
    this.chat = document.createElement("kc-chat");
    const toggle = el("button", { class: "menu", title: "Sessions", "aria-label": "Sessions", onclick: () => this.classList.toggle("show-list") }, "☰");
    const header = el("header", {}, toggle, el("span", { class: "brand" }, "kimicode"), el("span", { class: "status" }));
    this.append(header, el("div", { class: "body" }, this.sidebar, el("main", {}, this.chat)));
    this.chat.addEventListener("status", (e) => (header.querySelector(".status").textContent = e.detail));
    this.chat.addEventListener("turn-ended", () => this.refresh());
    this.refresh();
  }

  async refresh() {
    const [{ sessions }, { workspaces }] = await Promise.all([api("GET", "/sessions"), api("GET", "/workspaces")]);
    const select = el("select", { class: "workspace", "aria-label": "Workspace" }, ...workspaces.map((w) => el("option", { value: w }, w)));
    const create = el("button", { class: "new", onclick: () => this.create(select.value) }, "New session");
    const list = el("ul", { class: "sessions" });
    for (const session of sessions) {
      const label = session.title || (session.open ? "(new session)" : session.id);
      const item = el("li", { "data-id": session.id, class: session.open ? "open" : "stored" },
        el("button", { onclick: () => this.open(session) }, el("span", { class: "title" }, label),
          el("small", {}, `${session.workspace.split("/").pop()} · ${session.open ? (session.running ? "running" : "open") : "on disk"}`)));
      if (this.chat.sessionId === session.id) item.classList.add("current");
      list.append(item);
    }
    this.sidebar.replaceChildren(el("div", { class: "create" }, select, create), list);
    if (!this.chat.sessionId && sessions.length === 0 && workspaces.length) await this.create(workspaces[0]);
    else this.dataset.ready = "1"; // the list is shown and nothing more is on its way (tests wait for it)
  }

  async create(workspace) {
    try {
      const session = await api("POST", "/sessions", { workspace });
      await this.show(session);
    } catch (error) {
      this.chat.notice(error.message, "error");
    }
  }

  async open(session) {
    try {
      const opened = session.open ? session : await api("POST", "/sessions", { workspace: session.workspace, resume: session.id });
      this.show(opened);
    } catch (error) {
      this.chat.notice(error.message, "error");
    }
  }

  show(session) {
    this.classList.remove("show-list");
    this.chat.follow(session);
    return this.refresh();
  }
}

customElements.define("kc-app", KcApp);
