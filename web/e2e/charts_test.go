package e2e

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/faultline-dev/faultline/internal/browser"
)

// TestChartsDrawn checks the charts the data worker draws off the page: each tile's
// sparkline and figures and the performance panel's sparklines show, in the theme's
// colours, where they belong; after a resize they are drawn again at the tiles' new
// places, and after a change of theme in the new colours.
func TestChartsDrawn(t *testing.T) {
	s := startShop(t)
	b := browser.New(t, 1366, 768)
	b.Navigate(s.agg.URL() + "/")
	b.WaitFor(15*time.Second, tileSel("shop", "web", "search"), `document.querySelector('#breakers').innerText`)

	search := `.tile[data-key="shop/web/search"]`
	charts := []struct{ sel, color string }{
		{search + " .tile-spark", "--spark-line"}, // the calls/s line
		{search + " .tile-nums", "--text"},        // "fail 0.5%  12/s"
		{`[data-metric="cpu"] .metric-spark`, "--spark-line"},
	}
	check := func(when string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var missing []string
			for _, c := range charts {
				if n := pixelsOf(b, c.sel, c.color); n < 5 {
					missing = append(missing, fmt.Sprintf("%s (%d pixels of %s)", c.sel, n, c.color))
				}
			}
			if len(missing) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: no chart drawn in %s", when, strings.Join(missing, "; "))
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	check("at 1366x768")
	b.Do(chromedp.EmulateViewport(1100, 900))
	b.WaitFor(5*time.Second, `innerWidth === 1100`, `innerWidth`)
	check("after resizing to 1100x900")
	setScheme(b, "dark")
	check("in the dark theme")
}

// pixelsOf counts the pixels inside the element sel (scrolled into view) that are nearer
// the colour of the CSS custom property prop than the box's background (its commonest
// colour): the ink of a chart or a text drawn over it.
func pixelsOf(b *browser.Browser, sel, prop string) int {
	b.T().Helper()
	box := browser.Eval[struct {
		X, Y, W, H float64
		Color      string
	}](b, `(() => {
		const el = document.querySelector(`+browser.JSONString(sel)+`);
		el.scrollIntoView({ block: 'nearest' });
		const r = el.getBoundingClientRect();
		return { x: r.left, y: r.top, w: r.width, h: r.height,
			color: getComputedStyle(document.documentElement).getPropertyValue(`+browser.JSONString(prop)+`).trim() };
	})()`)
	ink, ok := hexColor(box.Color)
	if !ok {
		b.T().Fatalf("%s is %q, not a #rrggbb colour", prop, box.Color)
	}
	buf, err := chromedp.Run(b.Ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.T().Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		b.T().Fatal(err)
	}
	r := image.Rect(int(box.X), int(box.Y), int(box.X+box.W), int(box.Y+box.H)).Intersect(img.Bounds())
	rgb := func(x, y int) [3]int {
		cr, cg, cb, _ := img.At(x, y).RGBA()
		return [3]int{int(cr >> 8), int(cg >> 8), int(cb >> 8)}
	}
	counts := map[[3]int]int{}
	var bg [3]int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := rgb(x, y)
			counts[c]++
			if counts[c] > counts[bg] {
				bg = c
			}
		}
	}
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if c := rgb(x, y); colorDist(c, ink) < colorDist(c, bg) {
				n++
			}
		}
	}
	return n
}

func colorDist(a, b [3]int) int {
	d := 0
	for i := range a {
		d += max(a[i]-b[i], b[i]-a[i])
	}
	return d
}

func hexColor(s string) ([3]int, bool) {
	var c [3]int
	if len(s) != 7 || s[0] != '#' {
		return c, false
	}
	for i := range c {
		v, err := strconv.ParseUint(s[1+2*i:3+2*i], 16, 8)
		if err != nil {
			return c, false
		}
		c[i] = int(v)
	}
	return c, true
}
