// Draw each dashboard chart from the figure JSON the server embedded next to it.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".chart[data-figure]").forEach(function (el) {
    var figure = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    Plotly.newPlot(el, figure.data, figure.layout, {displaylogo: false, responsive: true});
  });
});
