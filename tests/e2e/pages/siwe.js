// The Next.js frontend's Sign-In with Ethereum: the snippet of
// docs/contracts/siwe.md ("SIWE from the browser"), which the scenario reads
// out of the markdown and bundles as `doc:siwe-snippet`, plus what the
// scenario needs around it: viem private-key accounts as the wallet, and the
// steps one by one to forge each refused message.
import { authClient, signInWithEthereum } from 'doc:siwe-snippet';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { createSiweMessage } from 'viem/siwe';

/** A viem local account as the snippet's signer. */
const signerOf = (key) => {
  const account = privateKeyToAccount(key);
  return { address: account.address, signMessage: (message) => account.signMessage({ message }) };
};

window.siwe = {
  newWallet: () => {
    const key = generatePrivateKey();
    return { key, address: privateKeyToAccount(key).address };
  },
  // The doc's code, as a frontend calls it.
  signIn: (key, chainId) => signInWithEthereum(signerOf(key), chainId),
  /**
   * A nonce for `key`'s address, a message with `overrides`, signed by
   * `signKey` (default `key`) or replaced by `signature`, sent to verify.
   */
  attempt: async ({ key, signKey, signature, chainId = 1, ...overrides }) => {
    const { address } = privateKeyToAccount(key);
    const nonce = await authClient.siwe.nonce({ walletAddress: address, chainId });
    if (nonce.error) return { error: nonce.error };
    const fields = {
      domain: window.location.host, uri: window.location.origin, address, chainId,
      nonce: nonce.data.nonce, version: '1', issuedAt: new Date(),
    };
    for (const [name, value] of Object.entries(overrides)) {
      fields[name] = ['issuedAt', 'expirationTime', 'notBefore'].includes(name) ? new Date(value) : value;
    }
    const message = createSiweMessage(fields);
    const signed = signature ?? await privateKeyToAccount(signKey ?? key).signMessage({ message });
    const result = await authClient.siwe.verify({ message, signature: signed, walletAddress: address, chainId });
    return { message, signature: signed, data: result.data, error: result.error };
  },
  verify: (body) => authClient.siwe.verify(body),
  signAndVerify: async ({ key, message }) => {
    const signature = await privateKeyToAccount(key).signMessage({ message });
    return authClient.siwe.verify({ message, signature });
  },
  getSession: () => authClient.getSession(),
  listAccounts: () => authClient.listAccounts(),
};

const status = document.getElementById('status');
window.hydrated = authClient.getSession().then((res) => {
  status.textContent = res.data ? `signed in as ${res.data.user.name}` : 'signed out';
  return res;
});
