// edge-salesbot dashboard: plain JS, no build, nothing loaded from outside the box.
// Every value from the server is put into the page as text (textContent), never as HTML.
"use strict";

const CSRF = document.querySelector('meta[name="csrf"]').content;
let L = {};
let TZ = "Asia/Shanghai";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function label(group, key) {
  return (L[group] && L[group][key]) || key || "";
}

function toast(message, bad) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.className = bad ? "show bad" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = ""; }, 4000);
}

async function api(path, options) {
  const opts = options || {};
  const headers = {"X-CSRF-Token": CSRF};
  let body;
  if (opts.form) body = opts.form;
  else if (opts.body !== undefined) { body = JSON.stringify(opts.body); headers["Content-Type"] = "application/json"; }
  const response = await fetch(path, {method: opts.method || (body ? "POST" : "GET"), headers, body,
                                      credentials: "same-origin"});
  if (response.status === 401) { location.href = "/login"; throw new Error("login"); }
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function localTime(iso) {
  // Shown in the box's time zone ([dialog] timezone), whatever the browser's own zone is.
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {timeZone: TZ, hour12: false, year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"}).formatToParts(d).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour === "24" ? "00" : parts.hour}:${parts.minute}`;
}

function table(id, columns, rows, emptyText) {
  const head = el("tr", {}, columns.map((c) => el("th", {text: c.title})));
  const body = rows.length
    ? rows.map((row) => el("tr", {class: row._class || null, "data-id": row._id || null},
        columns.map((c) => { const v = c.render ? c.render(row) : row[c.key]; return el("td", {class: c.class || null}, v === null || v === undefined ? "" : v); })))
    : [el("tr", {}, el("td", {colspan: columns.length, class: "muted", text: emptyText || "暂无数据"}))];
  return el("table", {id, class: "grid"}, el("thead", {}, head), el("tbody", {}, body));
}

function badge(kind, value, text) {
  return value ? el("span", {class: `badge ${kind}-${value}`, text: text || value}) : "";
}

function section(title, ...children) {
  return el("section", {class: "card"}, el("h2", {text: title}), ...children);
}

function field(labelText, input) {
  return el("label", {class: "field"}, el("span", {text: labelText}), input);
}

function query(name) {
  return new URLSearchParams(location.search).get(name) || "";
}

async function campaignOptions(select, selected, withAll) {
  const data = await api("/api/campaigns");
  select.replaceChildren(...(withAll ? [el("option", {value: "", text: "全部任务"})] : []),
    ...data.campaigns.map((c) => el("option", {value: c.id, "data-name": c.name, text: c.name,
                                                selected: String(c.id) === String(selected)})));
  return data.campaigns;
}

// ---- live calls ---------------------------------------------------------------------------------

async function livePage(main) {
  const holder = el("div", {id: "live"});
  main.replaceChildren(section("实时通话", el("p", {class: "muted", text: "每秒刷新；结束的通话保留几分钟。"}), holder));
  let version = -1;
  async function refresh() {
    try {
      const data = await api("/api/live");
      if (data.version === version) return;
      version = data.version;
      holder.replaceChildren(table("live-table", [
        {title: "状态", render: (r) => badge("state", r.state, label("state", r.state))},
        {title: "任务", key: "campaign"},
        {title: "客户", key: "lead"},
        {title: "话术节点", key: "node"},
        {title: "情绪", render: (r) => badge("mood", r.mood, label("mood", r.mood))},
        {title: "轮次", key: "turns"},
        {title: "客户刚说", key: "caller", class: "text"},
        {title: "机器人刚说", key: "bot", class: "text"},
        {title: "时长(秒)", key: "duration_s"},
        {title: "结果", render: (r) => label("outcome", r.outcome)},
        {title: "", render: (r) => r.state === "ended" ? el("a", {href: `/calls/${r.call_id}`, class: "call-link", text: "查看"}) : ""},
      ], data.calls.map((r) => ({...r, _class: `live-row state-${r.state}`, _id: r.call_id})), "当前没有通话"));
    } catch (error) { if (error.message !== "login") toast(error.message, true); }
  }
  await refresh();
  setInterval(refresh, 1000);
}

// ---- calls --------------------------------------------------------------------------------------

async function callsPage(main) {
  const campaign = el("select", {name: "campaign", id: "filter-campaign"});
  const disposition = el("select", {name: "disposition"}, el("option", {value: "", text: "全部结果"}),
    Object.entries(L.disposition).map(([k, v]) => el("option", {value: k, text: v})));
  const grade = el("select", {name: "grade"}, el("option", {value: "", text: "全部等级"}),
    ["A", "B", "C", "D", "E"].map((g) => el("option", {value: g, text: g})));
  const since = el("input", {type: "date", name: "from"});
  const until = el("input", {type: "date", name: "to"});
  const search = el("input", {type: "search", name: "q", placeholder: "姓名、公司或号码"});
  const holder = el("div", {id: "calls"});
  const form = el("form", {class: "filters", id: "calls-filter"}, field("任务", campaign), field("拨打结果", disposition),
    field("等级", grade), field("从", since), field("到", until), field("搜索", search), el("button", {type: "submit", text: "筛选"}));
  main.replaceChildren(section("通话记录", form, holder));
  const campaigns = await campaignOptions(campaign, query("campaign"), true);
  async function load() {
    const params = new URLSearchParams();
    const chosen = campaigns.find((c) => String(c.id) === campaign.value);
    if (chosen) params.set("campaign", chosen.name);
    for (const [key, input] of [["disposition", disposition], ["grade", grade], ["from", since], ["to", until], ["q", search]]) {
      if (input.value) params.set(key, input.value);
    }
    const data = await api(`/api/calls?${params}`);
    holder.replaceChildren(el("p", {class: "muted", text: `共 ${data.total} 通`}), table("calls-table", [
      {title: "时间", render: (r) => localTime(r.started_at)},
      {title: "任务", key: "campaign"},
      {title: "客户", render: (r) => `${r.lead_name || ""} ${r.company || ""}`},
      {title: "号码", key: "phone"},
      {title: "拨打结果", render: (r) => badge("disposition", r.disposition, label("disposition", r.disposition))},
      {title: "通话结果", render: (r) => label("outcome", r.outcome)},
      {title: "等级", render: (r) => badge("grade", r.grade)},
      {title: "时长(秒)", key: "duration_s"},
      {title: "第几次", key: "attempt"},
      {title: "", render: (r) => el("a", {href: `/calls/${r.id}`, class: "call-link", text: "详情"})},
    ], data.calls.map((r) => ({...r, _id: r.id})), "暂无通话"));
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); load().catch((e) => toast(e.message, true)); });
  await load();
}

async function callPage(main, callId) {
  const call = await api(`/api/calls/${encodeURIComponent(callId)}`);
  const facts = el("dl", {class: "facts"}, [
    ["任务", call.campaign], ["客户", `${call.lead_name || ""} ${call.company || ""}`], ["号码", call.phone],
    ["开始", localTime(call.started_at)], ["时长(秒)", call.duration_s], ["第几次拨打", call.attempt],
    ["拨打结果", label("disposition", call.disposition)], ["通话结果", label("outcome", call.outcome)],
    ["等级", call.grade || "-"], ["要求勿扰", call.dnc ? "是" : "否"],
    ["决策人", call.decision_maker === null || call.decision_maker === undefined ? "未知" : call.decision_maker ? "是" : "否"],
  ].map(([k, v]) => [el("dt", {text: k}), el("dd", {text: v === null || v === undefined ? "" : String(v)})]));
  const parts = [section(`通话 ${call.id}`, facts)];
  if (call.has_recording) {
    parts.push(section("录音", el("audio", {controls: true, preload: "none", src: `/api/calls/${encodeURIComponent(call.id)}/recording`})));
  }
  if (call.detail && call.detail.verdict) {
    parts.push(section("应答识别", el("p", {text: `${label("disposition", call.detail.verdict.kind)}（置信度 ${call.detail.verdict.confidence}）：${(call.detail.verdict.reasons || []).join("；")}`})));
  }
  const turns = [...call.turns];
  const lines = call.transcript.map((line) => {
    const bubble = el("div", {class: `line ${line.speaker}`}, el("span", {class: "who", text: label("speaker", line.speaker)}),
      el("span", {class: "said", text: line.text || "（沉默）"}));
    if (line.speaker === "caller" && turns.length) {
      const turn = turns.shift();
      bubble.append(el("span", {class: "intents"}, turn.intents.map((i) => el("span", {class: "chip", text: i})),
        el("span", {class: "node", text: `→ ${turn.node}`})));
    }
    return bubble;
  });
  parts.push(section("对话记录", el("div", {id: "transcript", class: "transcript"}, lines.length ? lines : el("p", {class: "muted", text: "无对话内容（或已按保留期限清除）"}))));
  const slots = Object.entries(call.slots || {});
  parts.push(section("对话状态（槽位）", table("slots-table", [
    {title: "槽位", key: "name"}, {title: "值", key: "value"}, {title: "状态", key: "status"}, {title: "置信度", key: "confidence"},
  ], slots.map(([name, s]) => ({name, value: typeof s.value === "object" ? JSON.stringify(s.value) : s.value, status: s.status, confidence: s.confidence})), "无")));
  parts.push(section("跟进任务", table("tasks-table", [
    {title: "类型", render: (t) => label("task", t.kind)}, {title: "时间", render: (t) => localTime(t.due)},
    {title: "渠道", key: "channel"}, {title: "联系方式", key: "contact"},
  ], call.tasks, "无")));
  main.replaceChildren(...parts);
}

// ---- campaigns ----------------------------------------------------------------------------------

async function campaignsPage(main) {
  const listHolder = el("div", {id: "campaigns"});
  const create = el("form", {id: "create-campaign", class: "filters"},
    field("名称", el("input", {name: "name", id: "campaign-name", required: true, maxlength: 60})),
    field("来电方（披露用）", el("input", {name: "sender", id: "campaign-sender", placeholder: "例如 智销云"})),
    field("拨打时段", el("input", {name: "hours", id: "campaign-hours", size: 34, value: "mon-fri=09:00-12:00,13:30-18:00"})),
    field("节假日", el("select", {name: "holidays", id: "campaign-holidays"}, el("option", {value: "cn", text: "中国法定节假日不拨打"}), el("option", {value: "none", text: "不限"}))),
    field("时区", el("input", {name: "timezone", value: "Asia/Shanghai"})),
    field("最大并发", el("input", {name: "max_concurrent", type: "number", min: 1, max: 200, value: 10})),
    field("遇语音信箱", el("select", {name: "voicemail_action"}, el("option", {value: "hangup", text: "挂断"}), el("option", {value: "message", text: "留言"}))),
    field("开场披露", el("input", {name: "disclosure", type: "checkbox", checked: true})),
    field("录音", el("input", {name: "recording", type: "checkbox"})),
    el("button", {type: "submit", id: "create-submit", text: "创建任务"}));
  const importCampaign = el("select", {name: "campaign", id: "import-campaign"});
  const importForm = el("form", {id: "import-leads", class: "filters"}, field("任务", importCampaign),
    field("线索文件（CSV，UTF-8 或 GBK）", el("input", {type: "file", name: "file", id: "import-file", accept: ".csv,.txt,.tsv", required: true})),
    el("button", {type: "submit", id: "import-submit", text: "导入线索"}));
  const importResult = el("div", {id: "import-result"});
  main.replaceChildren(section("外呼任务", listHolder), section("新建任务", create), section("导入线索", importForm, importResult));

  let shown = "";
  async function load() {
    const latest = JSON.stringify(await api("/api/campaigns"));
    if (latest === shown) return;
    shown = latest;
    const campaigns = await campaignOptions(importCampaign, importCampaign.value || query("campaign"), false);
    listHolder.replaceChildren(table("campaigns-table", [
      {title: "名称", key: "name"},
      {title: "状态", render: (c) => badge("status", c.status, label("campaign_status", c.status))},
      {title: "线索", render: (c) => Object.entries(c.leads).map(([k, v]) => `${label("lead_status", k)} ${v}`).join("，") || "无"},
      {title: "拨打时段", render: (c) => Object.entries(c.settings.hours).map(([d, w]) => `${d} ${w}`).join("；")},
      {title: "操作", render: (c) => el("span", {class: "actions"},
        c.status === "running"
          ? el("button", {type: "button", "data-action": "pause", "data-campaign": c.name, onclick: () => act(c, "pause"), text: "暂停"})
          : el("button", {type: "button", "data-action": "start", "data-campaign": c.name, onclick: () => act(c, "start"), text: "开始"}),
        el("a", {href: `/leads?campaign=${c.id}`, text: "线索"}),
        el("a", {href: `/calls?campaign=${c.id}`, text: "通话"}),
        el("a", {href: `/roi?campaign=${c.id}`, text: "报告"}),
        el("a", {href: `/api/campaigns/${c.id}/export?format=csv`, class: "export-csv", "data-campaign": c.name, download: `calls-${c.id}.csv`, text: "导出CSV"}),
        el("a", {href: `/api/campaigns/${c.id}/export?format=json`, download: `calls-${c.id}.json`, text: "导出JSON"}),
        c.error ? el("span", {class: "error", text: c.error}) : "")},
    ], campaigns.map((c) => ({...c, _id: c.id})), "还没有外呼任务"));
  }
  async function act(c, action) {
    try { await api(`/api/campaigns/${c.id}/${action}`, {method: "POST", body: {}}); toast(action === "start" ? `已开始：${c.name}` : `已暂停：${c.name}`); await load(); }
    catch (e) { toast(e.message, true); }
  }
  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(create));
    data.disclosure = create.elements.disclosure.checked;
    data.recording = create.elements.recording.checked;
    try { const made = await api("/api/campaigns", {body: data}); toast(`已创建：${made.name}`); importCampaign.value = made.id; await load(); importCampaign.value = made.id; }
    catch (e) { toast(e.message, true); }
  });
  importForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData();
    form.append("file", importForm.elements.file.files[0]);
    importResult.replaceChildren(el("p", {class: "muted", text: "导入中…"}));
    try {
      const report = await api(`/api/campaigns/${importCampaign.value}/leads`, {form});
      importResult.replaceChildren(
        el("p", {class: "summary", id: "import-summary", text: `${report.file}：接受 ${report.accepted} 条，拒绝 ${report.rejected} 条（${report.encoding}）`}),
        ...report.notes.map((n) => el("p", {class: "muted", text: n})),
        report.rejections.length ? table("rejections-table", [{title: "行", key: "line"}, {title: "原因", key: "reason"}, {title: "号码", key: "value"}],
          report.rejections.slice(0, 200), "") : "");
      await load();
    } catch (e) { importResult.replaceChildren(el("p", {class: "error", text: e.message})); }
  });
  await load();
  setInterval(() => load().catch(() => {}), 3000);
}

// ---- leads --------------------------------------------------------------------------------------

async function leadsPage(main) {
  const campaign = el("select", {name: "campaign", id: "leads-campaign"});
  const grade = el("select", {name: "grade"}, el("option", {value: "", text: "全部等级"}), ["A", "B", "C", "D", "E"].map((g) => el("option", {value: g, text: g})));
  const status = el("select", {name: "status"}, el("option", {value: "", text: "全部状态"}), Object.entries(L.lead_status).map(([k, v]) => el("option", {value: k, text: v})));
  const holder = el("div", {id: "leads"});
  const form = el("form", {class: "filters"}, field("任务", campaign), field("等级", grade), field("状态", status), el("button", {type: "submit", text: "筛选"}));
  main.replaceChildren(section("线索（按等级）与跟进", form, holder));
  const campaigns = await campaignOptions(campaign, query("campaign"), false);
  async function load() {
    if (!campaigns.length) { holder.replaceChildren(el("p", {class: "muted", text: "还没有外呼任务"})); return; }
    const params = new URLSearchParams({grade: grade.value, status: status.value});
    const data = await api(`/api/campaigns/${campaign.value}/leads?${params}`);
    holder.replaceChildren(table("leads-table", [
      {title: "等级", render: (r) => badge("grade", r.grade) || "-"},
      {title: "姓名", key: "name"}, {title: "公司", key: "company"}, {title: "号码", key: "phone"},
      {title: "状态", render: (r) => label("lead_status", r.status)}, {title: "已拨", key: "attempts"},
      {title: "下次拨打", render: (r) => localTime(r.next_at)}, {title: "最近结果", render: (r) => label("outcome", r.last_result)},
      {title: "跟进", render: (r) => r.tasks.map((t) => `${label("task", t.kind)} ${localTime(t.due)}`).join("；")},
    ], data.leads, "没有符合条件的线索"));
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); load().catch((e) => toast(e.message, true)); });
  await load();
}

// ---- DNC ----------------------------------------------------------------------------------------

async function dncPage(main) {
  const add = el("form", {id: "dnc-add", class: "filters"}, field("号码", el("input", {name: "number", required: true})),
    field("原因", el("input", {name: "reason", size: 30})), el("button", {type: "submit", text: "加入免打扰"}));
  const remove = el("form", {id: "dnc-remove", class: "filters"}, field("号码", el("input", {name: "number", required: true})),
    field("原因（必填，记入审计）", el("input", {name: "reason", size: 30, required: true})), el("button", {type: "submit", text: "移出免打扰"}));
  const holder = el("div", {id: "dnc"});
  const trail = el("div", {id: "dnc-audit"});
  main.replaceChildren(section("免打扰名单（每次拨打前检查）", add, remove, holder), section("变更审计", trail));
  async function load() {
    const data = await api("/api/dnc");
    holder.replaceChildren(el("p", {class: "muted", text: `共 ${data.count} 个号码`}), table("dnc-table", [
      {title: "号码", key: "key"}, {title: "加入时间", render: (r) => localTime(r.at)}, {title: "来源", key: "source"}, {title: "备注", key: "note"},
    ], data.entries, "名单为空"));
    trail.replaceChildren(table("audit-table", [
      {title: "时间", render: (r) => localTime(r.at)}, {title: "操作", key: "action"}, {title: "号码", key: "target"},
      {title: "操作人", key: "actor"}, {title: "原因", render: (r) => r.detail.reason || ""},
    ], data.audit, "无记录"));
  }
  for (const [form, path, done] of [[add, "/api/dnc", "已加入"], [remove, "/api/dnc/remove", "已移出"]]) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try { await api(path, {body: Object.fromEntries(new FormData(form))}); toast(done); form.reset(); await load(); }
      catch (e) { toast(e.message, true); }
    });
  }
  await load();
}

// ---- knowledge ----------------------------------------------------------------------------------

async function kbPage(main) {
  const input = el("input", {type: "search", name: "q", id: "kb-query", size: 40, placeholder: "例如：你们这个多少钱"});
  const results = el("div", {id: "kb-results"});
  const search = el("form", {class: "filters", id: "kb-search"}, field("问题", input), el("button", {type: "submit", text: "搜索"}));
  const upload = el("form", {class: "filters", id: "kb-import"}, field("知识文件（CSV / JSONL / Markdown）", el("input", {type: "file", name: "file", accept: ".csv,.jsonl,.md,.markdown", required: true})),
    el("button", {type: "submit", text: "导入"}));
  const imported = el("div", {id: "kb-import-result"});
  main.replaceChildren(section("知识库检索（与通话中相同）", search, results), section("导入知识", upload, imported));
  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const data = await api(`/api/kb/search?q=${encodeURIComponent(input.value)}`);
      results.replaceChildren(el("p", {class: "muted", text: `来源：${data.source}`}), ...data.hits.map((h, i) =>
        el("div", {class: "hit"}, el("strong", {text: `${i + 1}. ${h.question}`}), el("span", {class: "muted", text: `  得分 ${h.score.toFixed(4)}`}), el("p", {text: h.answer}))));
      if (!data.hits.length) results.append(el("p", {class: "muted", text: "没有匹配"}));
    } catch (e) { toast(e.message, true); }
  });
  upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData();
    form.append("file", upload.elements.file.files[0]);
    try { const r = await api("/api/kb/import", {form}); imported.replaceChildren(el("p", {text: `${r.file}：新增 ${r.added}，更新 ${r.updated}，未变 ${r.unchanged}（版本 ${r.version}）`})); }
    catch (e) { imported.replaceChildren(el("p", {class: "error", text: e.message})); }
  });
}

// ---- ROI ----------------------------------------------------------------------------------------

async function roiPage(main) {
  const campaign = el("select", {id: "roi-campaign"});
  const holder = el("div", {id: "roi"});
  main.replaceChildren(section("投入产出", el("form", {class: "filters"}, field("任务", campaign)), holder));
  const campaigns = await campaignOptions(campaign, query("campaign"), false);
  async function load() {
    if (!campaigns.length) { holder.replaceChildren(el("p", {class: "muted", text: "还没有外呼任务"})); return; }
    const data = await api(`/api/campaigns/${campaign.value}/roi`);
    const pct = (v) => (v === null || v === undefined ? "-" : `${(v * 100).toFixed(1)}%`);
    const f = data.funnel;
    holder.replaceChildren(
      table("funnel-table", [{title: "环节", render: (r) => label("funnel", r.key)}, {title: "数量", key: "n"}],
        Object.keys(L.funnel).map((key) => ({key, n: f[key]}))),
      el("p", {id: "roi-rates", text: `接通率 ${pct(data.rates.connect_rate)} · 转化率 ${pct(data.rates.conversion)} · 拨打 ${data.dials} 次 · 通话 ${data.minutes} 分钟 · 最佳时段 ${data.best_hours.map((h) => `${h}:00`).join("、") || "-"}`}),
      el("p", {text: `每条合格线索成本：机器人 ${data.cost.bot_per_qualified_cny ?? "-"} 元，人工团队 ${data.cost.human_per_qualified_cny} 元`}),
      el("div", {class: "charts"}, Object.keys(L.chart).map((kind) =>
        el("figure", {}, el("img", {src: `/api/campaigns/${campaign.value}/roi/${kind}.png?t=${Date.now()}`, alt: label("chart", kind), loading: "lazy"}),
          el("figcaption", {text: label("chart", kind)})))));
  }
  campaign.addEventListener("change", () => load().catch((e) => toast(e.message, true)));
  await load();
}

// ---- router -------------------------------------------------------------------------------------

const PAGES = {"/live": livePage, "/calls": callsPage, "/campaigns": campaignsPage, "/leads": leadsPage,
               "/dnc": dncPage, "/kb": kbPage, "/roi": roiPage};

async function start() {
  L = await (await fetch("/static/labels.zh.json")).json();
  try { TZ = (await api("/api/me")).timezone || TZ; } catch (e) { /* the page below reports it */ }
  const path = location.pathname;
  for (const link of document.querySelectorAll("#nav a")) {
    if (path === link.getAttribute("href") || path.startsWith(link.getAttribute("href") + "/")) link.classList.add("here");
  }
  const main = document.getElementById("main");
  try {
    if (path.startsWith("/calls/")) await callPage(main, decodeURIComponent(path.slice("/calls/".length)));
    else await (PAGES[path] || livePage)(main);
  } catch (e) {
    if (e.message !== "login") main.replaceChildren(el("p", {class: "error", text: e.message}));
  }
}

start();
