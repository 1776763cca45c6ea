// 考场与人员: the exam's rooms (add, rename, delete an empty one, a link into each room's
// console) and the staff accounts (create, reset password, disable/enable, roles, rooms), also
// from an XLSX sheet with every problem listed first. A password the server makes is shown
// once (and can be downloaded once); the server keeps only its hash.

import { clear, h } from "../shared/dom.js";
import { confirmDialog } from "../shared/confirm.js";
import { tr } from "../shared/i18n.js";
import { uploadWithProgress, progressBar } from "./ui.js";
import { officeStyles, roleName, ROLES } from "./office.js";

export async function render(root, ctx) {
  officeStyles();
  const id = encodeURIComponent(ctx.examId);
  // #people/ID lists this exam's staff; #people/ID/all every account (to give one a room here).
  const everyone = (ctx.parts || [])[0] === "all";
  const [exam, roomsReply, staffReply] = await Promise.all([
    ctx.api.get(`/api/v1/admin/exams/${id}`).catch(() => null),
    ctx.api.get(`/api/v1/admin/exams/${id}/rooms`),
    ctx.api.get(everyone ? "/api/v1/admin/staff" : `/api/v1/admin/staff?exam=${id}`),
  ]);
  const rooms = roomsReply.rooms;
  const staff = staffReply.staff;
  const notice = h("div", { id: "people-notice", role: "status" });
  root.append(
    h("h2", {}, tr("考场与人员", "Rooms & staff"), exam && exam.title ? h("span", { class: "muted" }, ` · ${exam.title}`) : null),
    notice,
    roomsSection(ctx, id, rooms, notice),
    staffSection(ctx, id, rooms, staff, notice, everyone),
    importSection(ctx, id),
  );
}

const say = (box, kind, text) => clear(box).append(h("p", { class: `note ${kind}`, role: kind === "error" ? "alert" : "status" }, text));

// --- rooms ---------------------------------------------------------------------------------------

function roomsSection(ctx, id, rooms, notice) {
  const code = h("input", { id: "room-code", required: true, maxlength: 64, size: 8 });
  const name = h("input", { id: "room-name", required: true, maxlength: 200 });
  const add = async (e) => {
    e.preventDefault();
    try {
      await ctx.api.post(`/api/v1/admin/exams/${id}/rooms`, { code: code.value.trim(), name: name.value.trim() });
      ctx.refresh();
    } catch (err) {
      say(notice, "error", err.message);
    }
  };
  const rename = async (r) => {
    const input = h("input", { value: r.name, "aria-label": tr("新名称", "New name"), maxlength: 200 });
    const ok = await confirmDialog(h("span", {}, tr("考场 {c} 的新名称：", "New name of room {c}:", { c: r.code }), input));
    if (!ok) return;
    try {
      await ctx.api.request("PATCH", `/api/v1/admin/exams/${id}/rooms/${encodeURIComponent(r.room_id)}`, { json: { name: input.value.trim() } });
      ctx.refresh();
    } catch (err) {
      say(notice, "error", err.message);
    }
  };
  const remove = async (r) => {
    if (!(await confirmDialog(tr("删除考场 {c}？", "Delete room {c}?", { c: r.code }), { danger: true }))) return;
    try {
      await ctx.api.request("DELETE", `/api/v1/admin/exams/${id}/rooms/${encodeURIComponent(r.room_id)}`);
      ctx.refresh();
    } catch (err) {
      say(notice, "error", err.message);
    }
  };
  return h(
    "section",
    { class: "card", "aria-labelledby": "rooms-title" },
    h("h3", { id: "rooms-title" }, tr("考场", "Rooms")),
    h(
      "table",
      { class: "table", id: "rooms" },
      h("thead", {}, h("tr", {}, [tr("编号", "Code"), tr("名称", "Name"), tr("考生", "Candidates"), tr("工作人员", "Staff"), tr("监考台", "Console"), ""].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        rooms.map((r) =>
          h(
            "tr",
            { "data-room": r.code },
            h("td", {}, r.code),
            h("td", {}, r.name),
            h("td", { class: "num" }, String(r.candidates)),
            h("td", {}, r.staff.join("、") || "—"),
            h("td", {}, h("a", { href: r.console_url }, tr("进入监考台", "Open console"))),
            h(
              "td",
              { class: "row" },
              h("button", { type: "button", onclick: () => rename(r) }, tr("改名", "Rename")),
              r.candidates ? null : h("button", { type: "button", class: "danger", onclick: () => remove(r) }, tr("删除", "Delete")),
            ),
          ),
        ),
      ),
    ),
    h(
      "form",
      { class: "row", onsubmit: add },
      h("label", { for: "room-code" }, tr("考场编号", "Room code")),
      code,
      h("label", { for: "room-name" }, tr("考场名称", "Room name")),
      name,
      h("button", { type: "submit" }, tr("添加考场", "Add room")),
    ),
  );
}

// --- staff accounts ------------------------------------------------------------------------------

function roleBoxes(prefix, chosen) {
  return ROLES.map((r) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name: `${prefix}-role`, value: r, checked: chosen.includes(r) }), roleName(r)),
  );
}

function roomBoxes(prefix, rooms, chosen) {
  return rooms.map((r) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name: `${prefix}-room`, value: r.room_id, checked: chosen.includes(r.room_id) }), `${r.code} ${r.name}`),
  );
}

const checked = (box, name) => [...box.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);

/** A password shown this once, with a way to copy it. */
function shownOnce(username, password) {
  return h(
    "p",
    { class: "note warn", role: "status", "data-password-for": username },
    tr("{u} 的密码（只显示这一次，请立即转交）：", "Password of {u} (shown this once; hand it over now): ", { u: username }),
    h("code", { class: "password" }, password),
  );
}

function staffSection(ctx, id, rooms, staff, notice, everyone) {
  const username = h("input", { id: "new-username", required: true, maxlength: 100, autocomplete: "off" });
  const name = h("input", { id: "new-name", maxlength: 200, autocomplete: "off" });
  const roles = h("fieldset", { class: "row" }, h("legend", {}, tr("角色", "Roles")), roleBoxes("new", ["proctor"]));
  const roomSet = h("fieldset", { class: "row" }, h("legend", {}, tr("考场", "Rooms")), roomBoxes("new", rooms, []));
  const form = h(
    "form",
    {
      id: "new-staff",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const made = await ctx.api.post("/api/v1/admin/staff", {
            username: username.value.trim(),
            name: name.value.trim(),
            roles: checked(form, "new-role"),
            room_ids: checked(form, "new-room"),
            exam_id: ctx.examId,
          });
          await ctx.refresh();
          const box = document.getElementById("people-notice");
          if (box) clear(box).append(shownOnce(made.username, made.password));
        } catch (err) {
          say(notice, "error", err.message);
        }
      },
    },
    h("div", { class: "row" }, h("label", { for: "new-username" }, tr("用户名", "Username")), username, h("label", { for: "new-name" }, tr("姓名", "Name")), name),
    roles,
    roomSet,
    h("button", { type: "submit", class: "primary" }, tr("添加工作人员", "Add staff member")),
  );
  const examRoomIds = new Set(rooms.map((r) => r.room_id));
  const row = (s) => {
    const here = s.rooms.filter((r) => examRoomIds.has(r.room_id));
    const act = async (fn) => {
      try {
        await fn();
      } catch (err) {
        say(notice, "error", err.message);
      }
    };
    const reset = () =>
      act(async () => {
        if (!(await confirmDialog(tr("为 {u} 重置密码？其已登录的页面将退出。", "Reset the password of {u}? Their open pages sign out.", { u: s.username })))) return;
        const r = await ctx.api.post(`/api/v1/admin/staff/${encodeURIComponent(s.staff_id)}/password`);
        clear(notice).append(shownOnce(r.username, r.password));
      });
    const toggle = () =>
      act(async () => {
        const disable = !s.disabled;
        if (disable && !(await confirmDialog(tr("停用 {u}？其所有登录立即失效。", "Disable {u}? All their sessions end at once.", { u: s.username }), { danger: true }))) return;
        await ctx.api.request("PATCH", `/api/v1/admin/staff/${encodeURIComponent(s.staff_id)}`, { json: { disabled: disable } });
        ctx.refresh();
      });
    const edit = () => {
      const box = h("div", { class: "edit-staff" }, h("fieldset", { class: "row" }, h("legend", {}, tr("角色", "Roles")), roleBoxes(`e-${s.staff_id}`, s.roles)), h("fieldset", { class: "row" }, h("legend", {}, tr("本场考试的考场", "Rooms of this exam")), roomBoxes(`e-${s.staff_id}`, rooms, here.map((r) => r.room_id))));
      confirmDialog(box, { ok: tr("保存", "Save") }).then((ok) => {
        if (!ok) return;
        const others = s.rooms.filter((r) => !examRoomIds.has(r.room_id)).map((r) => r.room_id);
        act(async () => {
          await ctx.api.request("PATCH", `/api/v1/admin/staff/${encodeURIComponent(s.staff_id)}`, {
            json: { roles: checked(box, `e-${s.staff_id}-role`), room_ids: [...others, ...checked(box, `e-${s.staff_id}-room`)] },
          });
          ctx.refresh();
        });
      });
    };
    return h(
      "tr",
      { "data-staff": s.username, class: s.disabled ? "absent" : "" },
      h("td", {}, s.username),
      h("td", {}, s.name || "—"),
      h("td", {}, s.roles.map(roleName).join("、")),
      h("td", {}, here.map((r) => r.code).join("、") || "—"),
      h("td", {}, s.disabled ? h("span", { class: "tag bad" }, tr("已停用", "Disabled")) : h("span", { class: "tag ok" }, tr("正常", "Active"))),
      h(
        "td",
        { class: "row" },
        h("button", { type: "button", onclick: edit }, tr("角色与考场", "Roles & rooms")),
        h("button", { type: "button", onclick: reset }, tr("重置密码", "Reset password")),
        h("button", { type: "button", class: s.disabled ? "" : "danger", onclick: toggle }, s.disabled ? tr("启用", "Enable") : tr("停用", "Disable")),
      ),
    );
  };
  return h(
    "section",
    { class: "card", "aria-labelledby": "staff-title" },
    h(
      "div",
      { class: "title-row" },
      h("h3", { id: "staff-title" }, tr("工作人员", "Staff")),
      everyone
        ? h("a", { href: `#people/${id}` }, tr("只看本场考试的工作人员", "Only this exam's staff"))
        : h("a", { href: `#people/${id}/all` }, tr("显示全部账号", "Show every account")),
    ),
    staff.length
      ? h(
          "table",
          { class: "table", id: "staff" },
          h("thead", {}, h("tr", {}, [tr("用户名", "Username"), tr("姓名", "Name"), tr("角色", "Roles"), tr("考场", "Rooms"), tr("状态", "Status"), ""].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, staff.map(row)),
        )
      : h("p", { class: "muted" }, tr("本场考试还没有工作人员。", "No staff for this exam yet.")),
    h("h4", {}, tr("添加工作人员", "Add a staff member")),
    form,
  );
}

// --- XLSX import ---------------------------------------------------------------------------------

function csvOf(rows) {
  const cell = (v) => `"${String(v ?? "").replace(/"/g, '""')}"`;
  return "\ufeff" + rows.map((r) => r.map(cell).join(",")).join("\r\n");
}

function importSection(ctx, id) {
  const file = h("input", { type: "file", id: "staff-file", accept: ".xlsx,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" });
  const out = h("div", { id: "staff-import-result" });
  const bar = progressBar(tr("上传进度", "Upload progress"));
  bar.el.hidden = true;
  const send = async (dry) => {
    clear(out);
    if (!file.files.length) return say(out, "error", tr("请先选择文件。", "Choose a file first."));
    const form = new FormData();
    form.append("file", file.files[0]);
    form.append("dry_run", dry ? "true" : "false");
    bar.el.hidden = false;
    bar.set(null);
    try {
      const r = await uploadWithProgress(ctx.session, "POST", `/api/v1/admin/exams/${id}/staff/import`, form, (a, b) => bar.set(a, b));
      bar.el.hidden = true;
      if (dry) return showPreview(out, r.preview);
      showCreated(out, r.created);
    } catch (err) {
      bar.el.hidden = true;
      if (err.body && err.body.problems) return showProblems(out, err.body.problems);
      say(out, "error", err.message);
    }
  };
  return h(
    "section",
    { class: "card", "aria-labelledby": "staff-import-title" },
    h("h3", { id: "staff-import-title" }, tr("从 XLSX 导入工作人员", "Import staff from XLSX")),
    h("p", { class: "hint" }, tr("第 1 行为表头：用户名、姓名（可选）、角色（监考员、技术服务、考务工作小组、考官、管理员，多个用顿号分隔）、考场（本场考试的考场编号）。密码由系统生成，只显示一次。", "Header row: 用户名, 姓名 (optional), 角色 (proctor, tech, reviewer, examiner, admin, or their Chinese names; several separated by 、), 考场 (this exam's room codes). Passwords are generated and shown once.")),
    h("div", { class: "row" }, h("label", { for: "staff-file" }, tr("工作人员名单", "Staff list")), file),
    h("div", { class: "row" }, h("button", { type: "button", onclick: () => send(true) }, tr("检查", "Check")), h("button", { type: "button", class: "primary", onclick: () => send(false) }, tr("导入工作人员", "Import staff"))),
    bar.el,
    out,
  );
}

function showProblems(out, problems) {
  clear(out).append(
    h("p", { class: "note error", role: "alert" }, tr("表格有 {n} 个问题，未导入任何账号。请改正后重新上传。", "{n} problems: nothing was imported. Fix them and upload again.", { n: problems.length })),
    h(
      "table",
      { class: "table", id: "staff-problems" },
      h("thead", {}, h("tr", {}, [tr("行", "Row"), tr("列", "Column"), tr("问题", "Problem"), tr("内容", "Value")].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, problems.map((p) => h("tr", {}, h("td", { class: "num" }, p.row == null ? "—" : tr("第 {n} 行", "row {n}", { n: p.row })), h("td", {}, p.column || "—"), h("td", {}, p.message), h("td", {}, p.value || "")))),
    ),
  );
}

function showPreview(out, rows) {
  clear(out).append(
    h("p", { class: "note ok", role: "status" }, tr("检查通过：{n} 个账号可以导入。", "No problems: {n} accounts ready to import.", { n: rows.length })),
    h(
      "table",
      { class: "table" },
      h("thead", {}, h("tr", {}, [tr("行", "Row"), tr("用户名", "Username"), tr("姓名", "Name"), tr("角色", "Roles"), tr("考场", "Rooms")].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, h("td", { class: "num" }, String(r.row)), h("td", {}, r.username), h("td", {}, r.name || "—"), h("td", {}, r.roles.map(roleName).join("、")), h("td", {}, r.rooms.join("、") || "—")))),
    ),
  );
}

function showCreated(out, created) {
  const rows = created.map((c) => [c.username, c.name, c.roles.map(roleName).join("、"), c.rooms.map((r) => r.code).join("、"), c.password]);
  const download = h(
    "button",
    {
      type: "button",
      id: "download-passwords",
      onclick: () => {
        const blob = new Blob([csvOf([[tr("用户名", "Username"), tr("姓名", "Name"), tr("角色", "Roles"), tr("考场", "Rooms"), tr("密码", "Password")], ...rows])], { type: "text/csv;charset=utf-8" });
        const url = URL.createObjectURL(blob);
        const a = h("a", { href: url, download: "staff-passwords.csv", hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
        download.disabled = true; // once: the server does not keep them
        download.textContent = tr("已下载", "Downloaded");
      },
    },
    tr("下载密码表", "Download passwords"),
  );
  clear(out).append(
    h("p", { class: "note ok", role: "status" }, tr("已导入 {n} 个账号。密码只显示这一次，请下载或抄送后再离开本页。", "{n} accounts imported. Passwords are shown this once: download them before leaving.", { n: created.length })),
    download,
    h(
      "table",
      { class: "table", id: "staff-created" },
      h("thead", {}, h("tr", {}, [tr("用户名", "Username"), tr("姓名", "Name"), tr("角色", "Roles"), tr("考场", "Rooms"), tr("密码", "Password")].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", { "data-staff": r[0] }, r.map((v, i) => h("td", {}, i === 4 ? h("code", { class: "password" }, v) : v || "—"))))),
    ),
  );
}
