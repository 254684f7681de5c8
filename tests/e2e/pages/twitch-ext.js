// A stand-in for Twitch's extension helper (twitch-ext.min.js) inside the
// panel iframe. The channel page (panel-host.html) posts
// {type: 'onAuthorized', auth} as Twitch hands a panel its Extension JWT; every
// Twitch.ext.onAuthorized callback gets `auth`, now and on each renewal (a
// callback registered later gets the latest one at once, as with Twitch).
// Twitch.ext.actions.requestIdShare() is counted in window.twitchStandIn.
(() => {
  const callbacks = [];
  let latest = null;
  window.twitchStandIn = { idShareRequests: 0 };
  window.Twitch = {
    ext: {
      onAuthorized(callback) {
        callbacks.push(callback);
        if (latest) callback(latest);
      },
      actions: {
        requestIdShare() { window.twitchStandIn.idShareRequests += 1; },
      },
    },
  };
  window.addEventListener('message', (e) => {
    if (e.source !== window.parent || e.data?.type !== 'onAuthorized') return;
    latest = e.data.auth;
    for (const callback of callbacks) callback(latest);
  });
})();
