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
      drawMap();
    } else if (m.type === 'reply') {
      onReply(m);
    } else if (m.type === 'error') {
      if (!C.token) $('login-error').textContent = m.message;
      note(m.message, true);
    }
  }
  function onReply(m) {
    if (m.cmd === 'reset') { $('reset-msg').textContent = m.message; }
    else if (m.cmd === 'estop') { note('emergency stop: ' + m.message, !m.ok); }
    else if (m.cmd === 'instruct') { if (m.request_id) { C.lastRequest = m.request_id; renderPlan(); } }
    else if (m.cmd === 'run' || m.cmd === 'cancel') { $('run-msg').textContent = m.message; }
    else if (m.cmd === 'logout') { C.token = null; showLoggedIn(false); }
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

  showLoggedIn(false);
  connect();
})();
