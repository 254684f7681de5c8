// The frontend's sign-in page as the OAuth 2.1 server uses it
// (docs/contracts/oauth2.md, "Authorization code + PKCE" step 3): it reads
// `callbackURL` from its query, signs the user in (or up) with email and
// password through the real Better Auth client, and then sends the browser
// back to `callbackURL`, where the server carries on with the session cookie
// that sign-in set.
import { createAuthClient } from 'better-auth/client';

const apiUrl = window.NEXT_PUBLIC_API_URL;
const authClient = createAuthClient({ baseURL: apiUrl });
const status = document.getElementById('status');
const form = document.getElementById('form');

// Only ever back to the auth server: a sign-in page must not be an open redirect.
function backTo() {
  const raw = new URLSearchParams(window.location.search).get('callbackURL');
  if (!raw) return null;
  try {
    const url = new URL(raw);
    return url.origin === new URL(apiUrl).origin ? url.href : null;
  } catch {
    return null;
  }
}
const callbackURL = backTo();
document.getElementById('continuing').textContent = callbackURL
  ? `then back to ${new URL(callbackURL).pathname}`
  : 'no (acceptable) callbackURL';

window.signInPage = { callbackURL, results: [] };

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const email = String(data.get('email'));
  const password = String(data.get('password'));
  const action = event.submitter?.value ?? 'sign-in';
  status.textContent = `${action}…`;
  const result = action === 'sign-up'
    ? await authClient.signUp.email({ email, password, name: String(data.get('name') || email) })
    : await authClient.signIn.email({ email, password });
  window.signInPage.results.push({ action, error: result.error });
  if (result.error) {
    status.textContent = `${action} failed: ${result.error.status} ${result.error.code ?? ''} ${result.error.message ?? ''}`;
    return;
  }
  status.textContent = `signed in as ${result.data.user.email}`;
  if (callbackURL) window.location.assign(callbackURL);
});
