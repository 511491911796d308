// Copy buttons of the "Put this project on your site" section (templates/plugin/snippets.html).
// Without JavaScript the buttons stay hidden and the read-only fields can be selected by hand.

for (const section of document.querySelectorAll("[data-snippets]")) {
  const status = section.querySelector("[data-copy-status]");
  for (const button of section.querySelectorAll("[data-copy]")) {
    const field = section.querySelector(`#${button.dataset.copy}`);
    if (!field) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      const copied = await copy(field);
      if (status) status.textContent = copied ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.";
    });
  }
}

async function copy(field) {
  try {
    await navigator.clipboard.writeText(field.value);
    return true;
  } catch {
    // No clipboard API (a page over plain HTTP) or no permission: select it for the person.
    field.focus();
    field.select();
    return false;
  }
}
