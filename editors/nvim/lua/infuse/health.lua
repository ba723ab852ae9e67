-- :checkhealth infuse
local M = {}

local health = vim.health or require('health')
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local err = health.error or health.report_error
local info = health.info or health.report_info
local start = health.start or health.report_start

function M.check()
  local config = require('infuse.config')
  local infuse = require('infuse')
  start('infuse')
  local v = vim.version()
  local version = ('%d.%d.%d'):format(v.major, v.minor, v.patch)
  if config.has('0.12') then
    ok('Neovim ' .. version .. ': ghost text through vim.lsp.inline_completion')
  elseif config.has('0.7') then
    ok('Neovim ' .. version .. ': completion items (<C-x><C-u>, nvim-cmp, blink.cmp); ghost text needs 0.12')
  else
    err('Neovim ' .. version .. ': infuse needs 0.7 or later')
  end
  local opts = infuse._options()
  if not opts then
    warn('require("infuse").setup() has not been called')
    return
  end
  local exe = opts.cmd[1]
  if vim.fn.executable(exe) == 1 then
    ok(('server: %s'):format(table.concat(opts.cmd, ' ')))
  else
    err(('%s is not an executable file'):format(exe), {
      'build it: go build -o bin/infuse ./cmd/infuse',
      'put it on PATH, or pass cmd = { "/path/to/infuse", "serve" } to setup()',
    })
  end
  info('settings sent: ' .. vim.fn.json_encode(config.server_settings(opts, false)))
  local clients = infuse._clients()
  if #clients == 0 then
    info('no server running: open a file of one of the filetypes, or see :InfuseRestart')
  end
  for _, c in ipairs(clients) do
    local bufs = vim.tbl_count(c.attached_buffers or {})
    ok(('server running (client %d, root %s, %d buffer(s), %s positions)'):format(
      c.id, c.config.root_dir or '?', bufs, c.offset_encoding or 'utf-16'))
  end
end

return M
