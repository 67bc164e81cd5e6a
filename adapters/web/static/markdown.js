// kchat's Markdown for answers: the safe subset a generator writes (fenced and
// inline code, emphasis, lists, headings, links), built as DOM nodes.
//
// Answers quote documents and users, so nothing here parses HTML: every piece of
// text reaches the page through text nodes, raw HTML stays visible as text, and a
// link is made only for http:, https: and mailto: URLs (never javascript: or
// data:). A small renderer of our own rather than a library: the libraries render
// to an HTML string, which would then need a sanitizer and innerHTML.
"use strict";

// eslint-disable-next-line no-unused-vars
const kchatMarkdown = (() => {
  const FENCE = /^\s{0,3}(`{3,}|~{3,})/;
  const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
  const NUMBERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
  const HEADING = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/;
  const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;

  // One alternative per inline construct, earliest match wins (in this order
  // when two start at the same place): code span, <autolink>, [text](url),
  // **strong**, __strong__, *em*, _em_, a bare URL.
  const INLINE = new RegExp(
    [
      "(`+)([^`]|[^`][\\s\\S]*?[^`])\\1(?!`)",
      "<((?:https?|mailto):[^\\s<>]+)>",
      "\\[([^\\[\\]\\n]+)\\]\\(\\s*<?([^\\s()<>]+)>?\\s*\\)",
      "\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*",
      "__(?=\\S)([\\s\\S]*?\\S)__(?!\\w)",
      "\\*(?=[^\\s*])([\\s\\S]*?[^\\s*])\\*",
      "(?<![\\w])_(?=[^\\s_])([\\s\\S]*?[^\\s_])_(?![\\w])",
      "(https?://[^\\s<>()\\[\\]]*[^\\s<>()\\[\\].,;:!?'\"])",
    ].join("|"),
    "g",
  );

  const ENTITY = /&(?:(amp|lt|gt|quot|apos|nbsp)|#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6}));/g;
  const NAMED = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

  // decode turns the few character references a model may write into the
  // characters they stand for: still text, never markup.
  function decode(text) {
    return text.replace(ENTITY, (all, name, dec, hex) => {
      if (name) return NAMED[name];
      const cp = dec ? Number(dec) : parseInt(hex, 16);
      return cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? String.fromCodePoint(cp) : all;
    });
  }

  // safeHref returns an absolute http(s) or mailto URL, or "" for anything else.
  function safeHref(raw) {
    let url;
    try {
      url = new URL(decode(raw));
    } catch {
      return "";
    }
    return url.protocol === "http:" || url.protocol === "https:" || url.protocol === "mailto:" ? url.href : "";
  }

  function node(tag, text) {
    const n = document.createElement(tag);
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function link(href, label) {
    const a = node("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    a.className = "md-link";
    a.append(label);
    return a;
  }

  // inline renders one block's text into parent; plain runs go through text(),
  // which may add its own nodes (the citation markers).
  function inline(parent, src, text) {
    let last = 0;
    for (const m of src.matchAll(INLINE)) {
      if (m.index > last) text(parent, decode(src.slice(last, m.index)));
      last = m.index + m[0].length;
      const [all, , code, auto, label, target, strong1, strong2, em1, em2, bare] = m;
      if (code !== undefined) {
        // CommonMark: one leading and trailing space are padding.
        const body = /^ .*[^ ].* $/s.test(code) ? code.slice(1, -1) : code;
        parent.append(node("code", body));
      } else if (auto !== undefined || bare !== undefined) {
        const href = safeHref(auto ?? bare);
        parent.append(href ? link(href, decode(auto ?? bare)) : decode(all));
      } else if (label !== undefined) {
        const href = safeHref(target);
        if (href) {
          const a = link(href, "");
          inline(a, label, (p, t) => p.append(t));
          parent.append(a);
        } else {
          inline(parent, label, text); // an unsafe link keeps its words, loses its target
        }
      } else {
        const tag = strong1 !== undefined || strong2 !== undefined ? "strong" : "em";
        const box = node(tag);
        inline(box, strong1 ?? strong2 ?? em1 ?? em2, text);
        parent.append(box);
      }
    }
    if (last < src.length) text(parent, decode(src.slice(last)));
  }

  // paragraph renders lines as one paragraph, keeping the line breaks.
  function paragraph(lines, text) {
    const p = node("p");
    lines.forEach((line, i) => {
      if (i > 0) p.append(node("br"));
      inline(p, line, text);
    });
    return p;
  }

  // render appends the Markdown src to parent. text(parent, string) appends a plain
  // run of text (default: as a text node).
  function render(parent, src, text = (p, t) => p.append(t)) {
    const lines = String(src).replace(/\r\n?/g, "\n").split("\n");
    let para = [];
    let list = null; // the open <ul> or <ol>
    let item = null; // its last <li>
    const flush = () => {
      if (para.length > 0) parent.append(paragraph(para, text));
      para = [];
    };
    const closeList = () => {
      list = null;
      item = null;
    };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const fence = line.match(FENCE);
      if (fence) {
        flush();
        closeList();
        const body = [];
        for (i += 1; i < lines.length && !lines[i].trimStart().startsWith(fence[1]); i++) body.push(lines[i]);
        const pre = node("pre");
        pre.append(node("code", body.join("\n")));
        parent.append(pre);
        continue;
      }
      if (line.trim() === "") {
        flush();
        closeList();
        continue;
      }
      const bullet = line.match(BULLET);
      const numbered = bullet ? null : line.match(NUMBERED);
      if (RULE.test(line) && !bullet) {
        flush();
        closeList();
        parent.append(node("hr"));
        continue;
      }
      if (bullet || numbered) {
        flush();
        const tag = bullet ? "UL" : "OL";
        if (!list || list.tagName !== tag) {
          list = node(tag.toLowerCase());
          if (numbered && numbered[1] !== "1") list.start = Number(numbered[1]);
          parent.append(list);
        }
        item = node("li");
        inline(item, bullet ? bullet[1] : numbered[2], text);
        list.append(item);
        continue;
      }
      if (item && /^\s+\S/.test(line)) {
        // An indented line continues the list item.
        item.append(node("br"));
        inline(item, line.trim(), text);
        continue;
      }
      closeList();
      const heading = line.match(HEADING);
      if (heading) {
        flush();
        const h = node("p");
        h.className = "md-heading";
        const strong = node("strong");
        inline(strong, heading[1], text);
        h.append(strong);
        parent.append(h);
        continue;
      }
      para.push(line);
    }
    flush();
  }

  return { render, safeHref };
})();
