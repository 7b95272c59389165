// Starts Web Chat on the page: a token from the page's own endpoint, then the app's Direct Line.
(async function () {
  const status = document.getElementById('status');
  const params = new URLSearchParams(window.location.search);
  // ?transport=polling makes Web Chat poll instead of opening the WebSocket stream.
  const webSocket = params.get('transport') !== 'polling';
  try {
    const response = await fetch('/api/directline/token', { method: 'POST' });
    if (!response.ok) { throw new Error('token endpoint answered ' + response.status); }
    const { token } = await response.json();
    const directLine = window.WebChat.createDirectLine({
      token,
      domain: window.location.origin + '/v3/directline',
      webSocket
    });
    window.WebChat.renderWebChat({
      directLine,
      styleOptions: { hideUploadButton: true, botAvatarInitials: 'AC', userAvatarInitials: 'You',
                      accent: '#0f5c4d', bubbleBorderRadius: 8, bubbleFromUserBorderRadius: 8 }
    }, document.getElementById('webchat'));
    document.querySelector('#webchat > *') && document.querySelector('#webchat').focus();
  } catch (err) {
    status.textContent = 'The chat could not start. Please reload the page in a moment.';
    status.hidden = false;
    console.error(err);
  }
})();
