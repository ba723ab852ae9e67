-- An nvim-lspconfig entry for infuse, for setups that configure their
-- servers through require('lspconfig') (before Neovim 0.11's vim.lsp.config):
--
--   require('infuse.lspconfig').register()
--   require('lspconfig').infuse.setup({ init_options = { infuse = { maxTokens = 32 } } })
--
-- This gives the plain LSP client (completion items for nvim-cmp or
-- blink.cmp); require('infuse').setup() is the fuller alternative.
local M = {}

function M.register()
  local configs = require('lspconfig.configs')
  if configs.infuse then
    return
  end
  local util = require('lspconfig.util')
  local config = require('infuse.config')
  local settings = config.server_settings(config.resolve({}), false)
  configs.infuse = {
    default_config = {
      cmd = config.defaults.cmd,
      filetypes = config.default_filetypes,
      root_dir = function(fname)
        return util.root_pattern(unpack(config.defaults.root_markers))(fname) or vim.fn.fnamemodify(fname, ':p:h')
      end,
      single_file_support = true,
      init_options = { infuse = settings },
      settings = { infuse = settings },
    },
    docs = {
      description = 'infuse: code completion from a local masked-diffusion language model (`infuse serve`).',
    },
  }
end

return M
