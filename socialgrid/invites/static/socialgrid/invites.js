// Copy-to-clipboard for the invite link. Without JavaScript the button stays hidden and the
// read-only field can still be selected and copied by hand.

for (const button of document.querySelectorAll("button[data-copy]")) {
  const field = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.dataset.copyStatus);
  if (!field) continue;
  button.hidden = false;

  const say = (text) => {
    if (status) status.textContent = text;
  };

  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      say("Link copied. Paste it anywhere to share it.");
    } catch {
      // No clipboard access (insecure origin, permission denied): select it for the user.
      field.focus();
      field.select();
      say("Press Ctrl+C (⌘C on a Mac) to copy the selected link.");
    }
  });
}

for (const field of document.querySelectorAll("input[data-select-on-focus]")) {
  field.addEventListener("focus", () => field.select());
}
