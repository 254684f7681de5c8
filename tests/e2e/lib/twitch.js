// Twitch's side of the extension contract: Extension JWTs minted as Twitch
// mints them (HS256 with the base64-decoded extension secret), for the panel
// scenarios to hand to the panel the way Twitch.ext.onAuthorized does.

import { SignJWT } from 'jose';

/**
 * A Twitch Extension JWT for a viewer of channel 9001, signed with `secretB64`
 * (the extension secret as Twitch's console shows it, base64), valid 5 minutes.
 * `userId: null` is a viewer who has not shared their identity.
 */
export function mintExtensionJwt({ secretB64, userId = '4242', opaque = 'U4242e2e', role = 'viewer', channelId = '9001' }) {
  const claims = {
    opaque_user_id: opaque,
    channel_id: channelId,
    role,
    is_unlinked: false,
    pubsub_perms: { listen: ['broadcast', 'global'], send: [] },
  };
  if (userId) claims.user_id = userId;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setExpirationTime('5m')
    .sign(Buffer.from(secretB64, 'base64'));
}
