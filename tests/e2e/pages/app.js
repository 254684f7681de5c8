// The Next.js frontend's auth, reduced to the client SDK calls it makes: the
// Better Auth client pointed at this backend. Sign-in is started here, OAuth runs
// entirely through the backend, and the page only ever reads get-session.
import { createAuthClient } from 'better-auth/client';

const authClient = createAuthClient({ baseURL: window.NEXT_PUBLIC_API_URL });

window.app = {
  // Navigates away (to the provider) when the backend answers {url, redirect:true}.
  signIn: (options) => authClient.signIn.social({ provider: 'local', ...options }),
  getSession: () => authClient.getSession(),
  signOut: () => authClient.signOut(),
  listSessions: () => authClient.listSessions(),
  revokeSession: (token) => authClient.revokeSession({ token }),
  revokeOtherSessions: () => authClient.revokeOtherSessions(),
  listAccounts: () => authClient.listAccounts(),
  // Navigates away (to the provider) like signIn.
  linkSocial: (options) => authClient.linkSocial(options),
  unlinkAccount: (providerId) => authClient.unlinkAccount({ providerId }),
};

// Hydrate the page's auth state on load, as the seed's example does.
const status = document.getElementById('status');
window.hydrated = authClient.getSession().then((res) => {
  status.textContent = res.data ? `signed in as ${res.data.user.email}` : 'signed out';
  return res;
});
