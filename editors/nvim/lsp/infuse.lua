-- The infuse language server for Neovim 0.11+'s vim.lsp.config: with this
-- folder on 'runtimepath', `vim.lsp.enable('infuse')` starts `infuse serve`
-- with the server's defaults, for every file buffer (the server's `enable`
-- setting switches languages off). require('infuse').setup{...} adds options,
-- a filetype list, ghost text and keymaps on top (see README.md).
--
-- No filetypes here: vim.lsp.config merges setup()'s list over this file's,
-- and a list here would survive setup{ filetypes = '*' }.
local config = require('infuse.config')
local settings = config.server_settings(config.resolve({}), false)
return {
  cmd = config.defaults.cmd,
  root_markers = config.defaults.root_markers,
  init_options = { infuse = settings },
  settings = { infuse = settings },
}
