// Score the text as you type (debounced), through textalyze's own /score endpoint.
const $ = (id) => document.getElementById(id);
let timer;

async function score() {
  const text = $("text").value.trim();
  if (!text) return;
  const response = await fetch("score", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }),
  });
  const answer = await response.json();
  if (!response.ok) {
    $("error").textContent = answer.error;
    return;
  }
  $("error").textContent = "";
  $("label").textContent = answer.label;
  $("score").textContent = answer.score.toFixed(3);
  $("meter").value = answer.score;
}

$("text").addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(score, 250);
});
