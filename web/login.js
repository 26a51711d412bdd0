/* The login page (/login): a browser gives the console's token (or a user and password); the console checks it
 * (GET /api/login with it in the Authorization header) and keeps it in an HttpOnly cookie, then the console opens. */
'use strict';

const msg = document.getElementById('login-msg');
async function login(authorization) {
  const r = await fetch('/api/login', {headers: {Authorization: authorization, Accept: 'application/json'}, credentials: 'same-origin'});
  if (r.ok) { location.href = '/#/overview'; return; }
  msg.textContent = r.status === 401 ? 'That credential is not this console\'s.' : 'HTTP ' + r.status;
  msg.className = 'err';
}
document.getElementById('login-token').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = document.getElementById('token').value.trim();
  if (!t) { msg.textContent = 'Paste the token first.'; msg.className = 'err'; return; }
  login('Bearer ' + t);
});
document.getElementById('login-basic').addEventListener('submit', (e) => {
  e.preventDefault();
  const u = document.getElementById('user').value, p = document.getElementById('password').value;
  // btoa takes Latin-1: encode the UTF-8 bytes first.
  login('Basic ' + btoa(String.fromCharCode(...new TextEncoder().encode(u + ':' + p))));
});
document.getElementById('logout').addEventListener('click', async () => {
  await fetch('/api/logout', {credentials: 'same-origin'});
  msg.textContent = 'Logged out.'; msg.className = 'muted';
});
