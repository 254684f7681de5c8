// The Next.js frontend's email-and-password auth, reduced to the Better Auth
// client SDK calls it makes against this backend: sign-up, sign-in, the
// forgot/reset password pages, change password, profile and account deletion.
// Every call answers the SDK's own `{data, error}`.
import { createAuthClient } from 'better-auth/client';

const authClient = createAuthClient({ baseURL: window.NEXT_PUBLIC_API_URL });

window.app = {
  signUp: (body) => authClient.signUp.email(body),
  // With a callbackURL the SDK's redirect plugin navigates to the answer's `url`.
  signIn: (body) => authClient.signIn.email(body),
  sendVerificationEmail: (body) => authClient.sendVerificationEmail(body),
  requestPasswordReset: (body) => authClient.requestPasswordReset(body),
  resetPassword: (body) => authClient.resetPassword(body),
  changePassword: (body) => authClient.changePassword(body),
  updateUser: (body) => authClient.updateUser(body),
  deleteUser: (body) => authClient.deleteUser(body),
  getSession: () => authClient.getSession(),
  signOut: () => authClient.signOut(),
};

// The reset page receives ?token= (or ?error=) from the mailed link.
const params = new URLSearchParams(window.location.search);
const token = document.getElementById('token');
if (token) token.textContent = params.get('token') ?? `error: ${params.get('error')}`;

const status = document.getElementById('status');
window.hydrated = authClient.getSession().then((res) => {
  status.textContent = res.data ? `signed in as ${res.data.user.email}` : 'signed out';
  return res;
});
