// The global CSS plotly.js would inject as an inline <style> element, which the desk's CSP forbids.
// Usage: node static/vendor/plotly-css.js static/vendor/plotly-basic-4.1.1.min.js > static/vendor/plotly-basic-4.1.1.css
const fs = require("fs");
const src = fs.readFileSync(process.argv[2], "utf8");
const at = src.indexOf('{"X,X div"');
let depth = 0, end = at;
for (; end < src.length; end++) {
  if (src[end] === "{") depth++;
  else if (src[end] === "}" && --depth === 0) break;
}
const rules = eval("(" + src.slice(at, end + 1) + ")");
const out = [];
// plotly inserts each rule at index 0, so the last one listed ends up first: keep that order.
for (const key of Object.keys(rules).reverse()) {
  const selector = key.replace(/^,/, " ,").replace(/X/g, ".js-plotly-plot .plotly").replace(/Y/g, ".plotly-notifier");
  out.push(`${selector}{${rules[key]}}`);
}
process.stdout.write(out.join("\n") + "\n");
