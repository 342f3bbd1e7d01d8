package web

import "strings"

// deviceName makes a short human name for a device from its User-Agent,
// such as "Firefox on Android" or "hearth CLI".
func deviceName(ua string) string {
	has := func(s string) bool { return strings.Contains(ua, s) }
	browser := ""
	switch {
	case strings.HasPrefix(ua, "hearth/"):
		return "hearth CLI"
	case has("Edg/"):
		browser = "Edge"
	case has("Firefox/"):
		browser = "Firefox"
	case has("Chrome/") || has("Chromium/") || has("CriOS/"):
		browser = "Chrome"
	case has("Safari/"):
		browser = "Safari"
	case has("curl/"):
		return "curl"
	}
	os := ""
	switch {
	case has("Android"):
		os = "Android"
	case has("iPhone"):
		os = "iPhone"
	case has("iPad"):
		os = "iPad"
	case has("Mac OS X") || has("Macintosh"):
		os = "Mac"
	case has("Windows"):
		os = "Windows"
	case has("CrOS"):
		os = "ChromeOS"
	case has("Linux"):
		os = "Linux"
	}
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return os
	}
	return "unknown device"
}
