// sitebot web console: plain JS, no build step. Talks JSON over one WebSocket (/ws);
// see docs/console.md for the protocol. Every text from the robot goes in with textContent.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const C = {
    ws: null, token: null, user: null, role: null, perms: new Set(), map: null, mapImg: null,
    state: {}, safetyAt: 0, limits: { max_linear_mps: 0.5, max_angular_radps: 1.0, teleop_period_s: 0.1 },
    held: false, pad: { v: 0, w: 0 }, padTimer: null, currentPlan: null, lastRequest: null,
    sent: 0, errors: [],
  };
  window.sitebotConsole = C;   // for tests and debugging

  // ------------------------------------------------------------------ connection
  function connect() {
    const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    C.ws = ws;
    ws.onopen = () => { setConn(true); if (C.pendingLogin) { send(C.pendingLogin); C.pendingLogin = null; } };
    ws.onclose = () => {
      setConn(false); releasePad(false); C.token = null; C.role = null; C.perms = new Set();
      showLoggedIn(false); setTimeout(connect, 1000);
    };
    ws.onmessage = (ev) => {
      let m; try { m = JSON.parse(ev.data); } catch (e) { return; }
      handle(m);
    };
  }
  function send(obj) {
    if (!C.ws || C.ws.readyState !== 1) return false;
    if (C.token && obj.type !== 'login') obj.token = C.token;
    C.ws.send(JSON.stringify(obj)); C.sent++;
    return true;
  }
  C.send = send;
  function setConn(ok) { const e = $('conn'); e.textContent = ok ? 'online' : 'offline'; e.className = ok ? 'ok' : 'bad'; }
  function note(text, err) {
    const li = document.createElement('li'); li.textContent = new Date().toLocaleTimeString() + ' ' + text;
    if (err) { li.className = 'err'; C.errors.push(text); }
    const ul = $('messages'); ul.insertBefore(li, ul.firstChild);
    while (ul.children.length > 30) ul.removeChild(ul.lastChild);
  }

  // ------------------------------------------------------------------ messages
  function handle(m) {
    if (m.type === 'welcome') {
      C.token = m.token; C.user = m.user; C.role = m.role; C.perms = new Set(m.permissions || []);
      Object.assign(C.limits, m.limits || {}); C.state = {};
      $('login-error').textContent = ''; showLoggedIn(true); applyPerms();
    } else if (m.type === 'map') {
      C.map = m; buildMapImage(); $('site-name').textContent = '(' + (m.site || '') + ')';
    } else if (m.type === 'state') {
      for (const k of Object.keys(m)) { if (k !== 'type') C.state[k] = m[k]; }
      if ('safety' in m) { C.safetyAt = performance.now(); renderSafety(); }
      if ('camera' in m) renderCamera();
      if ('plans' in m) renderPlan();
      if ('task' in m || 'confirmation' in m) renderTask();
      if ('gauges' in m) renderGauges();
      if ('audit' in m) renderAudit();
      if ('events' in m) renderEvents();
      if ('survey' in m) renderSurvey();
      if ('site' in m) onSiteState(m.site);
      drawMap();
    } else if (m.type === 'reply') {
      onReply(m);
    } else if (m.type === 'error') {
      if (!C.token) $('login-error').textContent = m.message;
      if (m.id && ED.pending[m.id]) onEditReply(Object.assign({ ok: false }, m));
      note(m.message, true);
    }
  }
  function onReply(m) {
    if (m.cmd === 'reset') { $('reset-msg').textContent = m.message; }
    else if (m.cmd === 'estop') { note('emergency stop: ' + m.message, !m.ok); }
    else if (m.cmd === 'instruct') { if (m.request_id) { C.lastRequest = m.request_id; renderPlan(); } }
    else if (m.cmd === 'run' || m.cmd === 'cancel') { $('run-msg').textContent = m.message; }
    else if (m.cmd === 'logout') { C.token = null; showLoggedIn(false); }
    else if (m.cmd === 'site_get') { if (m.ok) onSite(m.site); else $('ed-problem').textContent = m.message; }
    else if (m.cmd === 'site_edit') { onEditReply(m); }
    else if (m.cmd === 'survey') { $('survey-status').dataset.reply = m.message; renderSurvey(); }
    note(m.cmd + ': ' + m.message, !m.ok);
  }

  // ------------------------------------------------------------------ login
  function showLoggedIn(on) {
    $('login').hidden = on; $('main').hidden = !on; $('logout').hidden = !on;
    $('whoami').textContent = on ? (C.user + ' (' + C.role + ')') : '';
    if (!on) { $('safety-bar').className = 'level-unknown'; $('banner-text').textContent = C.ws && C.ws.readyState === 1 ? 'LOG IN TO SEE THE ROBOT' : 'NO CONNECTION'; }
  }
  function applyPerms() {
    const can = (a) => C.perms.has(a);
    $('pad').classList.toggle('disabled', !can('teleop'));
    $('mode-manual').disabled = $('mode-auto').disabled = !can('mode');
    $('instr-send').disabled = $('instr-text').disabled = !can('instruct');
    $('reset').disabled = !can('reset');
    $('cancel').disabled = !can('cancel');
    $('confirm-yes').disabled = $('confirm-no').disabled = !can('confirm');
    $('confirm-high-risk').disabled = !can('high_risk');
    $('survey-start').disabled = $('survey-stop').disabled = !can('survey');
    $('editor-panel').hidden = !can('edit_site');
    if (can('edit_site')) { selectTool(ED.tool); send({ type: 'site_get' }); }
    renderPlan();
  }
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const msg = { type: 'login', user: $('user').value, password: $('password').value };
    $('password').value = '';
    if (!send(msg)) C.pendingLogin = msg;
  });
  $('logout').addEventListener('click', () => { releasePad(true); send({ type: 'logout' }); });

  // ------------------------------------------------------------------ safety banner
  const LEVEL_TEXT = { normal: 'NORMAL', reduced_speed: 'REDUCED SPEED', protective_stop: 'PROTECTIVE STOP', emergency_stop: 'EMERGENCY STOP' };
  function renderSafety() {
    const s = C.state.safety; if (!s) return;
    const bar = $('safety-bar');
    bar.className = 'level-' + s.level_name;
    $('banner-text').textContent = (LEVEL_TEXT[s.level_name] || s.level_name) + (s.estop ? ' (latched)' : '');
    const parts = ['mode ' + s.mode, 'speed scale ' + fmt(s.speed_scale, 2)];
    if (s.reasons && s.reasons.length) parts.push('reasons: ' + s.reasons.join(', '));
    if (s.message) parts.push(s.message);
    $('banner-detail').textContent = parts.join(' | ');
  }
  setInterval(() => {   // a silent supervisor is shown, never hidden
    if (C.token && C.safetyAt && performance.now() - C.safetyAt > 1500) {
      $('safety-bar').className = 'stale'; $('banner-text').textContent = 'NO SAFETY STATE (supervisor silent)';
    }
  }, 500);
  $('estop').addEventListener('click', () => {
    releasePad(true);
    if (!send({ type: 'estop' })) note('emergency stop NOT sent: no connection (use the robot\'s hardware e-stop)', true);
  });
  $('reset').addEventListener('click', () => { $('reset-msg').textContent = 'reset requested...'; send({ type: 'reset' }); });

  // ------------------------------------------------------------------ map
  function buildMapImage() {
    const g = C.map && C.map.grid; if (!g) return;
    const bin = atob(g.bits); const cv = document.createElement('canvas');
    cv.width = g.width; cv.height = g.height;
    const ctx = cv.getContext('2d'); const img = ctx.createImageData(g.width, g.height);
    for (let r = 0; r < g.height; r++) {
      for (let c = 0; c < g.width; c++) {
        const i = r * g.width + c; const occ = (bin.charCodeAt(i >> 3) >> (7 - (i & 7))) & 1;
        const o = ((g.height - 1 - r) * g.width + c) * 4; const v = occ ? 60 : 238;
        img.data[o] = img.data[o + 1] = img.data[o + 2] = v; img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0); C.mapImg = cv; drawMap();
  }
  function view() {
    const cv = $('map'), g = C.map.grid;
    const w = g.width * g.resolution, h = g.height * g.resolution;
    const s = Math.min(cv.width / w, cv.height / h);
    const ox = (cv.width - w * s) / 2, oy = (cv.height - h * s) / 2;
    return { s, tx: (x) => ox + (x - g.origin[0]) * s, ty: (y) => oy + (h - (y - g.origin[1])) * s, ox, oy, w, h };
  }
  function poly(ctx, v, pts, close) {
    ctx.beginPath(); pts.forEach((p, i) => { const X = v.tx(p[0]), Y = v.ty(p[1]); if (i) ctx.lineTo(X, Y); else ctx.moveTo(X, Y); });
    if (close) ctx.closePath();
  }
  const ZONE = { keep_out: ['rgba(220,38,38,.25)', '#dc2626'], slow: ['rgba(202,138,4,.2)', '#ca8a04'], restricted: ['rgba(37,99,235,.18)', '#2563eb'] };
  function drawMap() {
    const cv = $('map'); const ctx = cv.getContext('2d');
    ctx.clearRect(0, 0, cv.width, cv.height);
    if (!C.map || !C.mapImg) return;
    const v = view();
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(C.mapImg, v.ox, v.oy, v.w * v.s, v.h * v.s);
    for (const z of C.map.zones || []) {
      const col = ZONE[z.kind] || ZONE.restricted; poly(ctx, v, z.polygon, true);
      ctx.fillStyle = col[0]; ctx.fill(); ctx.strokeStyle = col[1]; ctx.lineWidth = 1.5; ctx.stroke();
    }
    ctx.fillStyle = '#6b7280';
    for (const p of C.map.places || []) { ctx.fillRect(v.tx(p.pose[0]) - 1.5, v.ty(p.pose[1]) - 1.5, 3, 3); }
    drawRoutes(ctx, v);
    if (!$('editor-panel').hidden) drawEditor(ctx, v);
    const path = C.state.path;
    if (path && path.points && path.points.length > 1) {
      poly(ctx, v, path.points, false); ctx.strokeStyle = '#7c3aed'; ctx.lineWidth = 2; ctx.stroke();
    }
    for (const p of C.state.people || []) {
      ctx.beginPath(); ctx.arc(v.tx(p.x), v.ty(p.y), Math.max(3, 0.25 * v.s), 0, 2 * Math.PI);
      ctx.fillStyle = '#db2777'; ctx.fill();
    }
    const r = C.state.robot, s = C.state.safety;
    if (r && r.x !== null) {
      const X = v.tx(r.x), Y = v.ty(r.y);
      if (s && s.field_radius) {
        const col = s.level >= 2 ? '#dc2626' : (s.level === 1 ? '#d97706' : '#16a34a');
        ctx.beginPath(); ctx.arc(X, Y, s.field_radius * v.s, 0, 2 * Math.PI);
        ctx.strokeStyle = col; ctx.lineWidth = 2; ctx.setLineDash([5, 3]); ctx.stroke(); ctx.setLineDash([]);
      }
      ctx.save(); ctx.translate(X, Y); ctx.rotate(-r.yaw);
      const L = Math.max(8, 0.5 * v.s);
      ctx.beginPath(); ctx.moveTo(L, 0); ctx.lineTo(-L * 0.6, L * 0.55); ctx.lineTo(-L * 0.6, -L * 0.55); ctx.closePath();
      ctx.fillStyle = '#1d4ed8'; ctx.fill(); ctx.restore();
      $('pose').textContent = 'pose x ' + fmt(r.x, 2) + ' m, y ' + fmt(r.y, 2) + ' m, yaw ' + fmt(r.yaw, 2) +
        ' rad | v ' + fmt(r.v, 2) + ' m/s, w ' + fmt(r.w, 2) + ' rad/s (' + r.source + ')';
    }
  }
  function fmt(x, n) { return (x === null || x === undefined) ? '-' : Number(x).toFixed(n); }

  // ------------------------------------------------------------------ camera
  function renderCamera() {
    const c = C.state.camera; if (!c || !c.jpeg) return;
    $('camera').src = 'data:image/jpeg;base64,' + c.jpeg;
    $('camera-info').textContent = c.width + 'x' + c.height + ' @ ' + fmt(c.stamp, 1) + ' s';
  }

  // ------------------------------------------------------------------ teleop (hold to run)
  const pad = $('pad');
  function padVector(ev) {
    const b = pad.getBoundingClientRect(); const R = b.width / 2;
    let dx = (ev.clientX - b.left - R) / R, dy = (ev.clientY - b.top - R) / R;
    const n = Math.hypot(dx, dy); if (n > 1) { dx /= n; dy /= n; }
    $('pad-knob').style.left = (R + dx * R - 15) + 'px'; $('pad-knob').style.top = (R + dy * R - 15) + 'px';
    const dead = (u) => (Math.abs(u) < 0.08 ? 0 : u);
    C.pad = { v: -dead(dy) * C.limits.max_linear_mps, w: -dead(dx) * C.limits.max_angular_radps };
  }
  function sendPad() { if (C.held) send({ type: 'teleop', v: C.pad.v, w: C.pad.w }); }
  pad.addEventListener('pointerdown', (ev) => {
    if (!C.perms.has('teleop')) { note('teleop: your role (' + (C.role || 'none') + ') cannot drive', true); return; }
    ev.preventDefault();
    try { pad.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic pointers */ }
    C.held = true; pad.classList.add('held'); padVector(ev); sendPad();
    clearInterval(C.padTimer); C.padTimer = setInterval(sendPad, 1000 * C.limits.teleop_period_s);
    $('teleop-status').textContent = 'DRIVING (release to stop)';
  });
  pad.addEventListener('pointermove', (ev) => { if (C.held) padVector(ev); });
  function releasePad(tell) {
    if (!C.held) return;
    C.held = false; clearInterval(C.padTimer); C.padTimer = null; pad.classList.remove('held');
    $('pad-knob').style.left = '85px'; $('pad-knob').style.top = '85px';
    if (tell) send({ type: 'teleop_stop' });
    $('teleop-status').textContent = 'stopped';
  }
  for (const t of ['pointerup', 'pointercancel', 'lostpointercapture']) pad.addEventListener(t, () => releasePad(true));
  window.addEventListener('blur', () => releasePad(true));
  document.addEventListener('visibilitychange', () => { if (document.hidden) releasePad(true); });
  window.addEventListener('pagehide', () => releasePad(true));
  $('mode-manual').addEventListener('click', () => send({ type: 'mode', mode: 'manual' }));
  $('mode-auto').addEventListener('click', () => { releasePad(true); send({ type: 'mode', mode: 'automatic' }); });

  // ------------------------------------------------------------------ instructions and plans
  $('instr-form').addEventListener('submit', (ev) => {
    ev.preventDefault(); const text = $('instr-text').value.trim(); if (!text) return;
    C.lastRequest = null; C.currentPlan = null; $('run-msg').textContent = '';
    $('plan').hidden = false; $('plan').className = ''; $('plan-status').textContent = 'planning...';
    $('plan-steps').textContent = ''; $('plan-reason').textContent = ''; $('plan-question').hidden = true;
    $('run').disabled = true; $('run-confirm-box').hidden = true;
    send({ type: 'instruct', text });
  });
  $('answer-form').addEventListener('submit', (ev) => {
    ev.preventDefault(); const text = $('answer-text').value.trim();
    if (!text || !C.currentPlan) return;
    send({ type: 'answer', in_reply_to: C.currentPlan.plan_id, text });
    $('answer-text').value = ''; $('plan-status').textContent = 'planning...';
  });
  function renderPlan() {
    const plans = C.state.plans || [];
    const p = plans.find((x) => x.plan_id === C.lastRequest);
    if (!p) return;
    if (C.currentPlan && C.currentPlan.plan_id === p.plan_id && $('plan').dataset.rendered === p.plan_id) { updateRunButton(); return; }
    C.currentPlan = p; $('plan').hidden = false; $('plan').className = 'status-' + p.status;
    $('plan').dataset.rendered = p.plan_id; $('plan').dataset.planId = p.plan_id;
    const label = { ok: 'Plan (' + p.steps.length + ' step' + (p.steps.length === 1 ? '' : 's') + ')', clarify: 'Question', refuse: 'Refused' };
    $('plan-status').textContent = label[p.status] || p.status;
    const ol = $('plan-steps'); ol.textContent = '';
    for (const s of p.steps) {
      const li = document.createElement('li');
      li.textContent = s.skill + '(' + Object.entries(s.args).map(([k, v]) => k + '=' + v).join(', ') + ')';
      if (s.skill === 'operate_valve') li.className = 'warn';
      ol.appendChild(li);
    }
    $('plan-question').hidden = p.status !== 'clarify'; $('question-text').textContent = p.question || '';
    $('plan-reason').textContent = p.status === 'refuse' ? (p.reason || 'refused') : '';
    $('high-risk').hidden = !p.high_risk; $('confirm-high-risk').checked = false;
    $('run-confirm-box').hidden = true; updateRunButton();
  }
  function updateRunButton() {
    const p = C.currentPlan;
    $('run').disabled = !(p && p.status === 'ok' && C.perms.has('run') && (!p.high_risk || C.perms.has('high_risk')));
  }
  $('run').addEventListener('click', () => { if (C.currentPlan) $('run-confirm-box').hidden = false; });
  $('run-abort').addEventListener('click', () => { $('run-confirm-box').hidden = true; });
  $('run-confirm').addEventListener('click', () => {
    const p = C.currentPlan; if (!p) return;
    const msg = { type: 'run', plan_id: p.plan_id };
    if (p.high_risk) msg.confirm_high_risk = $('confirm-high-risk').checked;
    $('run-confirm-box').hidden = true; $('run-msg').textContent = 'starting...'; send(msg);
  });
  $('cancel').addEventListener('click', () => send({ type: 'cancel' }));

  // ------------------------------------------------------------------ task, gauges, logs
  function renderTask() {
    const t = C.state.task;
    const lines = [];
    if (t && t.plan_id) {
      lines.push('plan ' + t.plan_id + (t.running ? ' RUNNING' : ''));
      if (t.step) lines.push('step ' + t.step + '/' + t.step_count + ': ' + (t.state || ''));
      if (t.current) lines.push('current ' + t.current.skill + ' ' + t.current.outcome + ' ' + (t.current.message || ''));
      if (t.status) lines.push('status ' + JSON.stringify(t.status));
      if (t.result) {
        lines.push('result ' + t.result.code + (t.result.reason ? ' (' + t.result.reason + ')' : ''));
        for (const s of t.result.steps || []) {
          let line = '  ' + s.skill + ' ' + s.outcome + ' ' + (s.message || '');
          for (const r of s.readings || []) line += ' [' + r.asset + ' = ' + fmt(r.value, 2) + ' ' + r.unit + ']';
          lines.push(line);
        }
      }
    } else if (t && t.status) { lines.push('status ' + JSON.stringify(t.status)); }
    $('task').textContent = lines.length ? lines.join('\n') : 'no task';
    $('task').style.whiteSpace = 'pre-wrap';
    const c = C.state.confirmation;
    $('confirmation').hidden = !c; if (c) { $('confirmation-text').textContent = c.question + ' (plan ' + c.plan_id + ', ' + c.role_required + ' must answer)'; }
  }
  $('confirm-yes').addEventListener('click', () => { const c = C.state.confirmation; if (c) send({ type: 'confirm', plan_id: c.plan_id, answer: 'yes' }); });
  $('confirm-no').addEventListener('click', () => { const c = C.state.confirmation; if (c) send({ type: 'confirm', plan_id: c.plan_id, answer: 'no' }); });
  function renderGauges() {
    const box = $('gauges'); box.textContent = '';
    for (const g of C.state.gauges || []) {
      const d = document.createElement('div'); d.className = 'gauge';
      if (g.crop) { const im = document.createElement('img'); im.src = 'data:image/jpeg;base64,' + g.crop; im.alt = g.asset; d.appendChild(im); }
      const t = document.createElement('div');
      t.textContent = g.asset + ': ' + (g.valid ? fmt(g.value, 1) + ' ' + g.unit + ' (' + fmt(g.confidence, 2) + ')' : 'invalid ' + g.failure);
      d.appendChild(t); box.appendChild(d);
    }
  }
  function renderAudit() {
    const tb = $('audit').tBodies[0]; tb.textContent = '';
    for (const a of (C.state.audit || []).slice().reverse()) {
      const tr = document.createElement('tr');
      for (const v of [a.seq, fmt(a.t, 2), a.event, a.detail]) { const td = document.createElement('td'); td.textContent = v === null || v === undefined ? '' : String(v); tr.appendChild(td); }
      tb.appendChild(tr);
    }
  }
  function renderEvents() {
    const ul = $('events'); ul.textContent = '';
    for (const e of (C.state.events || []).slice().reverse()) {
      const li = document.createElement('li'); li.textContent = new Date(e.t * 1000).toLocaleTimeString() + ' ' + e.text; ul.appendChild(li);
    }
  }

  // ------------------------------------------------------------------ routes and docks on the map
  function placeXY(id) { const p = (C.map.places || []).find((q) => q.id === id); return p ? [p.pose[0], p.pose[1]] : null; }
  function drawRoutes(ctx, v) {
    ctx.setLineDash([6, 4]); ctx.strokeStyle = '#0d9488'; ctx.lineWidth = 1.5;
    for (const r of C.map.routes || []) {
      const pts = r.waypoints.map(placeXY).filter(Boolean);
      if (pts.length > 1) { poly(ctx, v, pts, r.loop); ctx.stroke(); }
    }
    ctx.setLineDash([]); ctx.strokeStyle = '#111';
    for (const d of C.map.docks || []) { const p = placeXY(d.place); if (p) ctx.strokeRect(v.tx(p[0]) - 5, v.ty(p[1]) - 5, 10, 10); }
  }

  // ------------------------------------------------------------------ survey
  function renderSurvey() {
    const s = C.state.survey, e = $('survey-status');
    let text = 'survey: ' + (s ? s.state : 'no status (recorder not running?)');
    if (s && s.values) {
      const v = s.values;
      if (s.recording) text += ' ' + fmt(v.duration_s, 0) + ' s, ' + (v.scans || 0) + ' scans, ' + (v.images || 0) + ' images';
      if (v.path) text += ' -> ' + v.path;
      if (v.error) text += ' (error: ' + v.error + ')';
    }
    if (e.dataset.reply) text += ' | ' + e.dataset.reply;
    e.textContent = text; e.className = 'mono' + (s && s.recording ? ' recording' : '');
  }
  $('survey-start').addEventListener('click', () => send({ type: 'survey', action: 'start' }));
  $('survey-stop').addEventListener('click', () => send({ type: 'survey', action: 'stop' }));

  // ------------------------------------------------------------------ site editor (edit_site)
  // Edits go to the server one at a time as {op, kind, entity, data} with the revision of the
  // loaded site; the server checks them as loading would and answers with the loader's words.
  const ED = { tool: 'place', site: null, pending: {}, nextId: 1, drag: null, verts: [], picked: {} };
  C.editor = ED;
  const SECTION = { place: 'places', asset: 'assets', zone: 'zones', route: 'routes', dock: 'docks', marker: 'markers' };
  const HINT = {
    place: 'Click the map to put a place there; drag to set its heading. Then name it and save.',
    zone: 'Click the map to add the polygon\'s vertices in order; then choose the kind and save.',
    route: 'Click places on the map (or pick them below) in the order of the route.',
    asset: 'Click a place on the map to choose the asset\'s place; assign a surveyed tag.',
    dock: 'Click the docked place on the map.',
    marker: 'Surveyed markers: confirm the drafts the marker survey wrote, delete wrong ones.',
  };
  const r2 = (x, n) => Math.round(x * 10 ** n) / 10 ** n;
  const val = (id) => $(id).value.trim();
  const num = (id) => (val(id) === '' ? null : Number(val(id)));
  const words = (id) => val(id).split(',').map((s) => s.trim()).filter(Boolean);
  function entries(kind) { return (ED.site && ED.site.site && ED.site.site[SECTION[kind]]) || []; }
  function entry(kind, id) { return entries(kind).find((e) => e && e.id === id); }
  function edMsg(kind, text, err) { const e = $('ed-' + kind + '-msg'); e.textContent = text; e.className = 'ed-msg ' + (err ? 'error' : 'ok'); }
  function selectTool(tool) {
    ED.tool = tool;
    for (const b of document.querySelectorAll('.ed-tool')) b.classList.toggle('active', b.dataset.tool === tool);
    for (const f of document.querySelectorAll('.ed-form')) f.hidden = f.dataset.kind !== tool;
    $('ed-hint').textContent = HINT[tool]; drawMap();
  }
  for (const b of document.querySelectorAll('.ed-tool')) b.addEventListener('click', () => selectTool(b.dataset.tool));
  function setOptions(sel, items, keep) {
    const old = keep === undefined ? sel.value : keep; sel.textContent = '';
    for (const [value, label] of items) { const o = document.createElement('option'); o.value = value; o.textContent = label; sel.appendChild(o); }
    sel.value = items.some(([value]) => value === old) ? old : (items.length ? items[0][0] : '');
  }
  function onSite(site) {
    ED.site = site; $('ed-conflict').hidden = true;
    $('ed-rev').textContent = 'revision ' + site.revision.slice(0, 12) + (site.last_edit ? ' (last edit: ' + site.last_edit.user + ', ' + site.last_edit.time + ')' : '');
    $('ed-problem').textContent = site.problem || (site.invalid ? 'the file on disk does not load: ' + site.invalid : '');
    for (const kind of ['place', 'zone', 'route', 'asset', 'dock']) {
      setOptions($('ed-' + kind + '-pick'), [['', '(new ' + kind + ')']].concat(entries(kind).map((e) => [e.id, e.id])), ED.picked[kind] || '');
    }
    const places = entries('place').map((p) => [p.id, p.id]);
    for (const sel of document.querySelectorAll('.ed-places')) setOptions(sel, places);
    setOptions($('ed-asset-fiducial'), [['', '(no tag)']].concat(entries('marker').map((m) => [String(m.tag), 'tag ' + m.tag + (m.draft ? ' (draft)' : '')])));
    const tb = $('ed-markers').tBodies[0]; tb.textContent = '';
    for (const m of entries('marker')) {
      const tr = document.createElement('tr');
      for (const text of [m.tag, (m.pose || []).join(', '), m.size, m.draft ? 'draft' : 'confirmed']) { const td = document.createElement('td'); td.textContent = String(text); tr.appendChild(td); }
      const td = document.createElement('td');
      if (m.draft) td.appendChild(button('Confirm', 'ed-confirm-' + m.tag, () => edSend('marker', 'confirm', m.tag)));
      td.appendChild(button('Delete', 'ed-delete-marker-' + m.tag, () => edSend('marker', 'delete', m.tag)));
      tr.appendChild(td); tb.appendChild(tr);
    }
    showAssetGauge();
  }
  function button(text, id, fn) { const b = document.createElement('button'); b.type = 'button'; b.textContent = text; b.id = id; b.addEventListener('click', fn); return b; }
  function showConflict(text) { $('ed-conflict-text').textContent = text; $('ed-conflict').hidden = false; }
  function onSiteState(s) {   // another page's edit: the overlays now, the editor's copy on request
    if (C.map) Object.assign(C.map, { zones: s.zones, places: s.places, routes: s.routes, docks: s.docks });
    if (ED.site && s.revision !== ED.site.revision && !Object.keys(ED.pending).length) {
      showConflict('The site was changed in another console (revision ' + s.revision.slice(0, 12) + '): reload it before editing.');
    }
  }
  $('ed-reload').addEventListener('click', () => send({ type: 'site_get' }));
  function edSend(kind, op, entity, data) {
    if (!ED.site) { edMsg(kind, 'the site is not loaded yet', true); return; }
    const id = 'ed' + ED.nextId++;
    const msg = { type: 'site_edit', id, revision: ED.site.revision, op, kind, entity };
    if (data) msg.data = data;
    ED.pending[id] = { kind, entity: op === 'delete' ? '' : (data && data.id) || entity };
    edMsg(kind, 'saving...', false); send(msg);
  }
  function onEditReply(m) {
    const req = ED.pending[m.id]; delete ED.pending[m.id];
    if (!req) return;
    if (m.ok) {
      ED.site.revision = m.revision; ED.picked[req.kind] = req.entity; edMsg(req.kind, m.message, false);
      if (req.kind === 'zone') ED.verts = [];
      send({ type: 'site_get' });
    } else if (m.conflict) {
      edMsg(req.kind, 'not saved: ' + m.message, true); showConflict(m.message);
    } else edMsg(req.kind, m.message, true);
  }
  // add a new entry or update the picked one (a changed id renames it); opt: keys that are
  // removed when empty (null)
  function edSave(kind, data, opt) {
    const picked = val('ed-' + kind + '-pick'), id = val('ed-' + kind + '-id');
    if (!id) { edMsg(kind, 'give the ' + kind + ' an id (snake_case)', true); return; }
    if (picked) {
      if (id !== picked) data.id = id;
      edSend(kind, 'update', picked, Object.assign(data, opt));
    } else {
      for (const [k, v] of Object.entries(opt)) if (v !== null) data[k] = v;
      edSend(kind, 'add', id, data);
    }
  }
  function edDelete(kind) {
    const picked = val('ed-' + kind + '-pick');
    if (!picked) { edMsg(kind, 'pick the ' + kind + ' to delete', true); return; }
    ED.picked[kind] = ''; edSend(kind, 'delete', picked);
  }
  for (const kind of ['place', 'zone', 'route', 'asset', 'dock']) {
    $('ed-' + kind + '-delete').addEventListener('click', () => edDelete(kind));
    $('ed-' + kind + '-pick').addEventListener('change', () => { ED.picked[kind] = val('ed-' + kind + '-pick'); loadEntry(kind); });
  }
  $('ed-marker').addEventListener('submit', (ev) => ev.preventDefault());
  function setv(id, v) { $(id).value = v === undefined || v === null ? '' : String(v); }
  function loadEntry(kind) {
    const e = entry(kind, val('ed-' + kind + '-pick')) || { id: '' };
    setv('ed-' + kind + '-id', e.id);
    if (kind !== 'dock') setv('ed-' + kind + '-name', e.name);
    if (kind === 'place') {
      const pose = e.pose || [null, null, 0];
      setv('ed-place-aliases', (e.aliases || []).join(', ')); setv('ed-place-x', pose[0]); setv('ed-place-y', pose[1]);
      setv('ed-place-heading', pose[2] === null ? 0 : r2(pose[2] * 180 / Math.PI, 1));
    } else if (kind === 'zone') {
      setv('ed-zone-kind', e.kind || 'keep_out'); setv('ed-zone-speed', e.max_speed); setv('ed-zone-roles', (e.roles || []).join(', '));
      ED.verts = (e.polygon || []).map((q) => q.slice()); showVerts();
    } else if (kind === 'route') {
      setv('ed-route-waypoints', (e.waypoints || []).join(', ')); $('ed-route-loop').checked = !!e.loop;
    } else if (kind === 'asset') {
      setv('ed-asset-kind', e.kind || 'gauge'); if (e.place) setv('ed-asset-place', e.place);
      setv('ed-asset-fiducial', e.fiducial === undefined ? '' : e.fiducial); setv('ed-asset-description', e.description);
      const g = e.gauge || {}; setv('ed-asset-unit', g.unit); setv('ed-asset-min', g.min_value); setv('ed-asset-max', g.max_value);
      showAssetGauge();
    } else if (kind === 'dock') {
      if (e.place) setv('ed-dock-place', e.place); setv('ed-dock-name', e.name);
    }
    drawMap();
  }
  $('ed-place').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const x = num('ed-place-x'), y = num('ed-place-y');
    if (x === null || y === null) { edMsg('place', 'click the map where the place is', true); return; }
    const al = words('ed-place-aliases');
    edSave('place', { name: val('ed-place-name'), pose: [r2(x, 3), r2(y, 3), r2((num('ed-place-heading') || 0) * Math.PI / 180, 4)] },
      { aliases: al.length ? al : null });
  });
  function showVerts() { $('ed-zone-verts').textContent = ED.verts.length + ' vertices'; drawMap(); }
  $('ed-zone-undo').addEventListener('click', () => { ED.verts.pop(); showVerts(); });
  $('ed-zone-clear').addEventListener('click', () => { ED.verts = []; showVerts(); });
  $('ed-zone').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const kind = val('ed-zone-kind'), data = { name: val('ed-zone-name'), kind };
    if (ED.verts.length || !val('ed-zone-pick')) data.polygon = ED.verts.map((q) => q.slice());
    const roles = words('ed-zone-roles');
    edSave('zone', data, { max_speed: kind === 'slow' ? num('ed-zone-speed') : null,
      roles: kind === 'restricted' ? roles : null });
  });
  function addWaypoint(id) { const w = words('ed-route-waypoints'); w.push(id); setv('ed-route-waypoints', w.join(', ')); drawMap(); }
  $('ed-route-add-btn').addEventListener('click', () => { if (val('ed-route-add')) addWaypoint(val('ed-route-add')); });
  $('ed-route-clear').addEventListener('click', () => { setv('ed-route-waypoints', ''); drawMap(); });
  $('ed-route').addEventListener('submit', (ev) => {
    ev.preventDefault();
    edSave('route', { name: val('ed-route-name'), waypoints: words('ed-route-waypoints') }, { loop: $('ed-route-loop').checked ? true : null });
  });
  function showAssetGauge() { $('ed-asset-gauge').hidden = val('ed-asset-kind') !== 'gauge'; }
  $('ed-asset-kind').addEventListener('change', showAssetGauge);
  $('ed-asset').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const gauge = val('ed-asset-kind') === 'gauge'
      ? { unit: val('ed-asset-unit'), min_value: num('ed-asset-min'), max_value: num('ed-asset-max') } : null;
    edSave('asset', { name: val('ed-asset-name'), kind: val('ed-asset-kind'), place: val('ed-asset-place') },
      { fiducial: val('ed-asset-fiducial') === '' ? null : Number(val('ed-asset-fiducial')), gauge,
        description: val('ed-asset-description') || null });
  });
  $('ed-dock').addEventListener('submit', (ev) => {
    ev.preventDefault();
    edSave('dock', { place: val('ed-dock-place') }, { name: val('ed-dock-name') || null });
  });

  // the map as the editor's canvas: map <-> canvas pixels <-> page pixels
  const mapCv = $('map');
  function mapPoint(ev) {   // the canvas's content box (inside its border) holds the drawing
    const b = mapCv.getBoundingClientRect(), v = view(), g = C.map.grid;
    const X = (ev.clientX - b.left - mapCv.clientLeft) * mapCv.width / mapCv.clientWidth;
    const Y = (ev.clientY - b.top - mapCv.clientTop) * mapCv.height / mapCv.clientHeight;
    return { X, Y, x: g.origin[0] + (X - v.ox) / v.s, y: g.origin[1] + v.h - (Y - v.oy) / v.s };
  }
  ED.toClient = (x, y) => {   // offset from the element's centre in page pixels (for tests)
    const b = mapCv.getBoundingClientRect(), v = view();
    return [mapCv.clientLeft + v.tx(x) * mapCv.clientWidth / mapCv.width - b.width / 2,
      mapCv.clientTop + v.ty(y) * mapCv.clientHeight / mapCv.height - b.height / 2];
  };
  function nearestPlace(p) {
    const v = view(); let best = null, bd = 14;
    for (const q of C.map.places || []) { const d = Math.hypot(v.tx(q.pose[0]) - p.X, v.ty(q.pose[1]) - p.Y); if (d < bd) { bd = d; best = q.id; } }
    return best;
  }
  mapCv.addEventListener('pointerdown', (ev) => {
    if ($('editor-panel').hidden || !C.map || !C.map.grid) return;
    ev.preventDefault(); const p = mapPoint(ev);
    if (ED.tool === 'place') {
      ED.drag = p; setv('ed-place-x', r2(p.x, 2)); setv('ed-place-y', r2(p.y, 2));
      try { mapCv.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic pointers */ }
    } else if (ED.tool === 'zone') { ED.verts.push([r2(p.x, 2), r2(p.y, 2)]); showVerts(); } else {
      const id = nearestPlace(p); if (!id) return;
      if (ED.tool === 'route') addWaypoint(id); else if (ED.tool === 'asset') setv('ed-asset-place', id);
      else if (ED.tool === 'dock') setv('ed-dock-place', id);
    }
    drawMap();
  });
  mapCv.addEventListener('pointermove', (ev) => {
    if (!ED.drag) return;
    const p = mapPoint(ev);
    if (Math.hypot(p.X - ED.drag.X, p.Y - ED.drag.Y) < 6) return;
    setv('ed-place-heading', r2(Math.atan2(p.y - ED.drag.y, p.x - ED.drag.x) * 180 / Math.PI, 1)); drawMap();
  });
  for (const t of ['pointerup', 'pointercancel']) mapCv.addEventListener(t, () => { ED.drag = null; });
  function drawEditor(ctx, v) {
    ctx.fillStyle = '#374151'; ctx.font = '10px sans-serif';
    for (const p of C.map.places || []) ctx.fillText(p.id, v.tx(p.pose[0]) + 3, v.ty(p.pose[1]) - 3);
    ctx.strokeStyle = '#c026d3'; ctx.fillStyle = '#c026d3'; ctx.lineWidth = 2;
    if (ED.tool === 'place' && num('ed-place-x') !== null && num('ed-place-y') !== null) {
      const X = v.tx(num('ed-place-x')), Y = v.ty(num('ed-place-y')), a = (num('ed-place-heading') || 0) * Math.PI / 180;
      ctx.beginPath(); ctx.arc(X, Y, 5, 0, 2 * Math.PI); ctx.fill();
      ctx.beginPath(); ctx.moveTo(X, Y); ctx.lineTo(X + 18 * Math.cos(a), Y - 18 * Math.sin(a)); ctx.stroke();
    } else if (ED.tool === 'zone' && ED.verts.length) {
      poly(ctx, v, ED.verts, ED.verts.length > 2); ctx.stroke();
      for (const q of ED.verts) ctx.fillRect(v.tx(q[0]) - 3, v.ty(q[1]) - 3, 6, 6);
    } else if (ED.tool === 'route') {
      const pts = words('ed-route-waypoints').map(placeXY).filter(Boolean);
      if (pts.length > 1) { poly(ctx, v, pts, $('ed-route-loop').checked); ctx.stroke(); }
    }
  }

  showLoggedIn(false);
  connect();
})();
