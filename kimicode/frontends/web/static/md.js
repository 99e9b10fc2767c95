// A small Markdown renderer for text that is hostile (the model's replies, tool output): every piece of
// the input is HTML-escaped before any tag is added, links go only to http(s), and no attribute is ever
// built from unescaped text. The result is safe to assign to innerHTML.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const KEYWORDS = new Set(("if else elif for while return def class import from as with try except finally raise " +
  "function const let var new async await yield lambda in not and or is None True False null true false " +
  "fn pub struct impl use match mod type interface export default switch case break continue").split(" "));
const TOKENS = /(#[^\n]*|\/\/[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`|\b\d[\d_.]*\b|\b[A-Za-z_][A-Za-z0-9_]*\b)/g;

// Code highlighting: the raw code is cut into tokens and each token is escaped on its own.
export function highlight(code) {
  let out = "";
  let last = 0;
  for (const match of code.matchAll(TOKENS)) {
    out += escapeHtml(code.slice(last, match.index));
    const token = match[0];
    let kind = "";
    if (token.startsWith("#") || token.startsWith("//")) kind = "c";
    else if (/^["'`]/.test(token)) kind = "s";
    else if (/^\d/.test(token)) kind = "n";
    else if (KEYWORDS.has(token)) kind = "k";
    out += kind ? `<span class="tk-${kind}">${escapeHtml(token)}</span>` : escapeHtml(token);
    last = match.index + token.length;
  }
  return out + escapeHtml(code.slice(last));
}

// Inline marks, on text that is escaped already (so * ` [ ] ( ) are the only markup left).
function inline(escaped) {
  return escaped
    .split(/(`[^`\n]+`)/g)
    .map((part) => {
      if (part.length > 1 && part.startsWith("`") && part.endsWith("`")) return `<code>${part.slice(1, -1)}</code>`;
      return part
        .replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>")
        .replace(/(^|[\s(])\*([^*\n]+)\*(?=[\s).,;:!?]|$)/g, "$1<em>$2</em>")
        .replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>');
    })
    .join("");
}

export function renderMarkdown(text) {
  const lines = String(text).replace(/\r\n/g, "\n").split("\n");
  const html = [];
  let paragraph = [];
  let list = null; // "ul" or "ol" while inside a list
  const flush = () => {
    if (paragraph.length) html.push(`<p>${paragraph.map((l) => inline(escapeHtml(l))).join("<br>")}</p>`);
    paragraph = [];
  };
  const endList = () => {
    if (list) html.push(`</${list}>`);
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^\s*```\s*([\w+-]*)/);
    if (fence) {
      flush();
      endList();
      const code = [];
      i++;
      while (i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i++]);
      const lang = fence[1] ? ` data-lang="${escapeHtml(fence[1])}"` : "";
      html.push(`<pre class="code"${lang}><code>${highlight(code.join("\n"))}</code></pre>`);
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    const item = line.match(/^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$/);
    if (heading) {
      flush();
      endList();
      const level = Math.min(heading[1].length + 2, 6);
      html.push(`<h${level}>${inline(escapeHtml(heading[2]))}</h${level}>`);
    } else if (item) {
      flush();
      const kind = item[1] ? "ul" : "ol";
      if (list !== kind) {
        endList();
        html.push(`<${kind}>`);
        list = kind;
      }
      html.push(`<li>${inline(escapeHtml(item[3]))}</li>`);
    } else if (line.startsWith(">")) {
      flush();
      endList();
      html.push(`<blockquote>${inline(escapeHtml(line.replace(/^>\s?/, "")))}</blockquote>`);
    } else if (!line.trim()) {
      flush();
      endList();
    } else {
      endList();
      paragraph.push(line);
    }
  }
  flush();
  endList();
  return html.join("");
}
